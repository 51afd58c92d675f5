"""The embed page for articles (`/embed`) and its oEmbed endpoint (`/oembed`)."""
