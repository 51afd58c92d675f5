"""initial schema

States, organisations (names over time, aliases), memberships as periods, places, sources, and
events with participants, tags, claims and typed links. Reviewed by hand: every constraint is
named by the naming convention in app/db.py; enumerations are CHECKs rather than PostgreSQL
enum types; the event table is shared by diplomatic actions and incidents (single-table
inheritance, discriminator `kind`).

Revision ID: 1ed0732e5dde
Revises:
Create Date: 2026-11-25 15:26:48.816425
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "1ed0732e5dde"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "organisation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("headquarters", sa.String(length=200), nullable=True),
        sa.Column("wikidata_qid", sa.String(length=20), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("founded_on", sa.Date(), nullable=True),
        sa.Column("founded_precision", sa.String(length=5), nullable=True),
        sa.Column("dissolved_on", sa.Date(), nullable=True),
        sa.Column("dissolved_precision", sa.String(length=5), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "dissolved_precision IN ('day', 'month', 'year')",
            name=op.f("organisation_dissolved_precision_check"),
        ),
        sa.CheckConstraint(
            "founded_precision IN ('day', 'month', 'year')",
            name=op.f("organisation_founded_precision_check"),
        ),
        sa.CheckConstraint(
            "kind IN ('military_alliance', 'confederation', 'economic_community', 'security_committee', 'international_organisation', 'peacekeeping_mission', 'military_operation', 'agreement_body')",
            name=op.f("organisation_kind_check"),
        ),
        sa.CheckConstraint(
            "(dissolved_on IS NULL) = (dissolved_precision IS NULL)",
            name=op.f("organisation_dissolved_precision_set_check"),
        ),
        sa.CheckConstraint(
            "(founded_on IS NULL) = (founded_precision IS NULL)",
            name=op.f("organisation_founded_precision_set_check"),
        ),
        sa.CheckConstraint(
            "dissolved_on >= founded_on", name=op.f("organisation_valid_lifetime_check")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("organisation_pkey")),
        sa.UniqueConstraint("code", name=op.f("organisation_code_key")),
    )
    op.create_table(
        "source",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("publisher", sa.String(length=300), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=True),
        sa.Column("published_on", sa.Date(), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("source_pkey")),
        sa.UniqueConstraint("url", name=op.f("source_url_key")),
    )
    op.create_table(
        "state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=3), nullable=False),
        sa.Column("alpha2", sa.String(length=2), nullable=False),
        sa.Column("numeric", sa.String(length=3), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("official_name", sa.String(length=300), nullable=True),
        sa.Column("capital", sa.String(length=200), nullable=True),
        sa.Column("capital_lat", sa.Float(), nullable=True),
        sa.Column("capital_lon", sa.Float(), nullable=True),
        sa.Column("wikidata_qid", sa.String(length=20), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "capital_lat BETWEEN -90 AND 90", name=op.f("state_capital_lat_range_check")
        ),
        sa.CheckConstraint(
            "capital_lon BETWEEN -180 AND 180", name=op.f("state_capital_lon_range_check")
        ),
        sa.CheckConstraint("length(alpha2) = 2", name=op.f("state_alpha2_length_check")),
        sa.CheckConstraint("length(code) = 3", name=op.f("state_code_length_check")),
        sa.PrimaryKeyConstraint("id", name=op.f("state_pkey")),
        sa.UniqueConstraint("alpha2", name=op.f("state_alpha2_key")),
        sa.UniqueConstraint("code", name=op.f("state_code_key")),
    )
    op.create_table(
        "membership",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("state_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("start_on", sa.Date(), nullable=False),
        sa.Column("start_precision", sa.String(length=5), nullable=False),
        sa.Column("end_on", sa.Date(), nullable=True),
        sa.Column("end_precision", sa.String(length=5), nullable=True),
        sa.Column("end_kind", sa.String(length=10), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(end_on IS NOT NULL) = (end_kind = 'dated')",
            name=op.f("membership_end_kind_matches_check"),
        ),
        sa.CheckConstraint(
            "end_kind IN ('dated', 'open', 'unknown')", name=op.f("membership_end_kind_check")
        ),
        sa.CheckConstraint(
            "end_precision IN ('day', 'month', 'year')", name=op.f("membership_end_precision_check")
        ),
        sa.CheckConstraint(
            "start_precision IN ('day', 'month', 'year')",
            name=op.f("membership_start_precision_check"),
        ),
        sa.CheckConstraint(
            "status IN ('founding_member', 'member', 'suspended', 'withdrawn')",
            name=op.f("membership_status_check"),
        ),
        sa.CheckConstraint(
            "(end_on IS NULL) = (end_precision IS NULL)",
            name=op.f("membership_end_precision_set_check"),
        ),
        sa.CheckConstraint("end_on >= start_on", name=op.f("membership_valid_period_check")),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("membership_organisation_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["state_id"], ["state.id"], name=op.f("membership_state_id_fkey"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("membership_pkey")),
        sa.UniqueConstraint(
            "organisation_id",
            "state_id",
            "status",
            "start_on",
            name=op.f("membership_organisation_id_state_id_status_start_on_key"),
        ),
    )
    op.create_index(
        "ix_membership_organisation_period",
        "membership",
        ["organisation_id", "start_on"],
        unique=False,
    )
    op.create_index(
        "ix_membership_state_period", "membership", ["state_id", "start_on"], unique=False
    )

    op.create_table(
        "organisation_alias",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("alias", sa.String(length=300), nullable=False),
        sa.Column("folded", sa.String(length=300), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("organisation_alias_organisation_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("organisation_alias_pkey")),
        sa.UniqueConstraint(
            "organisation_id", "alias", name=op.f("organisation_alias_organisation_id_alias_key")
        ),
    )
    op.create_index(
        op.f("ix_organisation_alias_folded"), "organisation_alias", ["folded"], unique=False
    )

    op.create_table(
        "organisation_name",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_from_precision", sa.String(length=5), nullable=True),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("valid_to_precision", sa.String(length=5), nullable=True),
        sa.CheckConstraint(
            "valid_from_precision IN ('day', 'month', 'year')",
            name=op.f("organisation_name_valid_from_precision_check"),
        ),
        sa.CheckConstraint(
            "valid_to_precision IN ('day', 'month', 'year')",
            name=op.f("organisation_name_valid_to_precision_check"),
        ),
        sa.CheckConstraint(
            "valid_to >= valid_from", name=op.f("organisation_name_valid_period_check")
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("organisation_name_organisation_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("organisation_name_pkey")),
        sa.UniqueConstraint(
            "organisation_id", "name", name=op.f("organisation_name_organisation_id_name_key")
        ),
    )
    op.create_index(
        op.f("ix_organisation_name_organisation_id"),
        "organisation_name",
        ["organisation_id"],
        unique=False,
    )

    op.create_table(
        "organisation_source",
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("organisation_source_organisation_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["source.id"],
            name=op.f("organisation_source_source_id_fkey"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint(
            "organisation_id", "source_id", name=op.f("organisation_source_pkey")
        ),
    )
    op.create_table(
        "place",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=80), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("state_id", sa.Integer(), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("lat BETWEEN -90 AND 90", name=op.f("place_lat_range_check")),
        sa.CheckConstraint("lon BETWEEN -180 AND 180", name=op.f("place_lon_range_check")),
        sa.ForeignKeyConstraint(
            ["state_id"], ["state.id"], name=op.f("place_state_id_fkey"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("place_pkey")),
        sa.UniqueConstraint("code", name=op.f("place_code_key")),
    )
    op.create_table(
        "state_alias",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("state_id", sa.Integer(), nullable=False),
        sa.Column("alias", sa.String(length=200), nullable=False),
        sa.Column("folded", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["state_id"], ["state.id"], name=op.f("state_alias_state_id_fkey"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("state_alias_pkey")),
        sa.UniqueConstraint("state_id", "alias", name=op.f("state_alias_state_id_alias_key")),
    )
    op.create_index(op.f("ix_state_alias_folded"), "state_alias", ["folded"], unique=False)

    op.create_table(
        "event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=120), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("category", sa.String(length=60), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("date_precision", sa.String(length=5), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("place_id", sa.Integer(), nullable=True),
        sa.Column("place_name", sa.String(length=300), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("location_precision", sa.String(length=10), nullable=True),
        sa.Column("location_state_id", sa.Integer(), nullable=True),
        sa.Column("cameo_code", sa.String(length=8), nullable=True),
        sa.Column("goldstein", sa.Float(), nullable=True),
        sa.Column("confidence", sa.String(length=10), nullable=True),
        sa.Column("fact_ref", sa.String(length=20), nullable=True),
        sa.Column("casualties_killed", sa.Integer(), nullable=True),
        sa.Column("casualties_wounded", sa.Integer(), nullable=True),
        sa.Column("casualties_note", sa.Text(), nullable=True),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "confidence IN ('high', 'medium', 'low')", name=op.f("event_confidence_check")
        ),
        sa.CheckConstraint(
            "date_precision IN ('day', 'month', 'year')", name=op.f("event_date_precision_check")
        ),
        sa.CheckConstraint(
            "kind IN ('diplomatic_action', 'incident')", name=op.f("event_kind_check")
        ),
        sa.CheckConstraint(
            "location_precision IN ('point', 'locality', 'region', 'country')",
            name=op.f("event_location_precision_check"),
        ),
        sa.CheckConstraint(
            "(lat IS NULL) = (lon IS NULL)", name=op.f("event_lat_lon_together_check")
        ),
        sa.CheckConstraint("casualties_killed >= 0", name=op.f("event_killed_not_negative_check")),
        sa.CheckConstraint(
            "casualties_wounded >= 0", name=op.f("event_wounded_not_negative_check")
        ),
        sa.CheckConstraint("end_date >= date", name=op.f("event_valid_period_check")),
        sa.CheckConstraint("lat BETWEEN -90 AND 90", name=op.f("event_lat_range_check")),
        sa.CheckConstraint("lon BETWEEN -180 AND 180", name=op.f("event_lon_range_check")),
        sa.ForeignKeyConstraint(
            ["location_state_id"],
            ["state.id"],
            name=op.f("event_location_state_id_fkey"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["place_id"], ["place.id"], name=op.f("event_place_id_fkey"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("event_pkey")),
        sa.UniqueConstraint("public_id", name=op.f("event_public_id_key")),
    )
    op.create_index(
        "ix_event_category_timeline", "event", ["category", "date", "public_id"], unique=False
    )
    op.create_index("ix_event_kind_timeline", "event", ["kind", "date", "public_id"], unique=False)
    op.create_index(op.f("ix_event_place_id"), "event", ["place_id"], unique=False)
    op.create_index("ix_event_timeline", "event", ["date", "public_id"], unique=False)

    op.create_table(
        "membership_source",
        sa.Column("membership_id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["membership_id"],
            ["membership.id"],
            name=op.f("membership_source_membership_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["source.id"],
            name=op.f("membership_source_source_id_fkey"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("membership_id", "source_id", name=op.f("membership_source_pkey")),
    )
    op.create_table(
        "place_alias",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("place_id", sa.Integer(), nullable=False),
        sa.Column("alias", sa.String(length=200), nullable=False),
        sa.Column("folded", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["place_id"], ["place.id"], name=op.f("place_alias_place_id_fkey"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("place_alias_pkey")),
        sa.UniqueConstraint("place_id", "alias", name=op.f("place_alias_place_id_alias_key")),
    )
    op.create_index(op.f("ix_place_alias_folded"), "place_alias", ["folded"], unique=False)

    op.create_table(
        "claim",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("topic", sa.String(length=80), nullable=False),
        sa.Column("claimant_state_id", sa.Integer(), nullable=True),
        sa.Column("claimant_organisation_id", sa.Integer(), nullable=True),
        sa.Column("claimant_group", sa.String(length=200), nullable=True),
        sa.Column("statement", sa.Text(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("unit", sa.String(length=40), nullable=True),
        sa.Column("made_on", sa.Date(), nullable=True),
        sa.CheckConstraint(
            "(CASE WHEN claimant_state_id IS NOT NULL THEN 1 ELSE 0 END) + (CASE WHEN claimant_organisation_id IS NOT NULL THEN 1 ELSE 0 END) + (CASE WHEN claimant_group IS NOT NULL THEN 1 ELSE 0 END) = 1",
            name=op.f("claim_one_claimant_check"),
        ),
        sa.ForeignKeyConstraint(
            ["claimant_organisation_id"],
            ["organisation.id"],
            name=op.f("claim_claimant_organisation_id_fkey"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["claimant_state_id"],
            ["state.id"],
            name=op.f("claim_claimant_state_id_fkey"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["event_id"], ["event.id"], name=op.f("claim_event_id_fkey"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("claim_pkey")),
    )
    op.create_index(op.f("ix_claim_event_id"), "claim", ["event_id"], unique=False)

    op.create_table(
        "event_link",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("from_event_id", sa.Integer(), nullable=False),
        sa.Column("to_event_id", sa.Integer(), nullable=False),
        sa.Column("link_type", sa.String(length=20), nullable=False),
        sa.CheckConstraint(
            "link_type IN ('in_response_to', 'escalates', 'part_of', 'follows_up', 'related_to')",
            name=op.f("event_link_link_type_check"),
        ),
        sa.CheckConstraint("from_event_id <> to_event_id", name=op.f("event_link_not_self_check")),
        sa.ForeignKeyConstraint(
            ["from_event_id"],
            ["event.id"],
            name=op.f("event_link_from_event_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["to_event_id"],
            ["event.id"],
            name=op.f("event_link_to_event_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("event_link_pkey")),
        sa.UniqueConstraint(
            "from_event_id",
            "to_event_id",
            "link_type",
            name=op.f("event_link_from_event_id_to_event_id_link_type_key"),
        ),
    )
    op.create_index(op.f("ix_event_link_to_event_id"), "event_link", ["to_event_id"], unique=False)

    op.create_table(
        "event_participant",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("state_id", sa.Integer(), nullable=True),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("group_name", sa.String(length=200), nullable=True),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.CheckConstraint(
            "role IN ('initiator', 'target', 'affected', 'mediator', 'participant', 'observer')",
            name=op.f("event_participant_role_check"),
        ),
        sa.CheckConstraint(
            "(CASE WHEN state_id IS NOT NULL THEN 1 ELSE 0 END) + (CASE WHEN organisation_id IS NOT NULL THEN 1 ELSE 0 END) + (CASE WHEN group_name IS NOT NULL THEN 1 ELSE 0 END) = 1",
            name=op.f("event_participant_one_actor_check"),
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["event.id"],
            name=op.f("event_participant_event_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("event_participant_organisation_id_fkey"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["state_id"],
            ["state.id"],
            name=op.f("event_participant_state_id_fkey"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("event_participant_pkey")),
    )
    op.create_index(
        op.f("ix_event_participant_event_id"), "event_participant", ["event_id"], unique=False
    )
    op.create_index(
        "ix_event_participant_organisation_timeline",
        "event_participant",
        ["organisation_id", "date", "event_id"],
        unique=False,
    )
    op.create_index(
        "ix_event_participant_state_timeline",
        "event_participant",
        ["state_id", "date", "event_id"],
        unique=False,
    )

    op.create_table(
        "event_source",
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"], ["event.id"], name=op.f("event_source_event_id_fkey"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["source.id"],
            name=op.f("event_source_source_id_fkey"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("event_id", "source_id", name=op.f("event_source_pkey")),
    )
    op.create_index(op.f("ix_event_source_source_id"), "event_source", ["source_id"], unique=False)

    op.create_table(
        "event_tag",
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=60), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"], ["event.id"], name=op.f("event_tag_event_id_fkey"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("event_id", "tag", name=op.f("event_tag_pkey")),
    )
    op.create_index("ix_event_tag_timeline", "event_tag", ["tag", "date", "event_id"], unique=False)

    op.create_table(
        "claim_source",
        sa.Column("claim_id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["claim_id"], ["claim.id"], name=op.f("claim_source_claim_id_fkey"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["source.id"],
            name=op.f("claim_source_source_id_fkey"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("claim_id", "source_id", name=op.f("claim_source_pkey")),
    )


def downgrade() -> None:
    op.drop_table("claim_source")
    op.drop_index("ix_event_tag_timeline", table_name="event_tag")

    op.drop_table("event_tag")
    op.drop_index(op.f("ix_event_source_source_id"), table_name="event_source")

    op.drop_table("event_source")
    op.drop_index("ix_event_participant_state_timeline", table_name="event_participant")
    op.drop_index("ix_event_participant_organisation_timeline", table_name="event_participant")
    op.drop_index(op.f("ix_event_participant_event_id"), table_name="event_participant")

    op.drop_table("event_participant")
    op.drop_index(op.f("ix_event_link_to_event_id"), table_name="event_link")

    op.drop_table("event_link")
    op.drop_index(op.f("ix_claim_event_id"), table_name="claim")

    op.drop_table("claim")
    op.drop_index(op.f("ix_place_alias_folded"), table_name="place_alias")

    op.drop_table("place_alias")
    op.drop_table("membership_source")
    op.drop_index("ix_event_timeline", table_name="event")
    op.drop_index(op.f("ix_event_place_id"), table_name="event")
    op.drop_index("ix_event_kind_timeline", table_name="event")
    op.drop_index("ix_event_category_timeline", table_name="event")

    op.drop_table("event")
    op.drop_index(op.f("ix_state_alias_folded"), table_name="state_alias")

    op.drop_table("state_alias")
    op.drop_table("place")
    op.drop_table("organisation_source")
    op.drop_index(op.f("ix_organisation_name_organisation_id"), table_name="organisation_name")

    op.drop_table("organisation_name")
    op.drop_index(op.f("ix_organisation_alias_folded"), table_name="organisation_alias")

    op.drop_table("organisation_alias")
    op.drop_index("ix_membership_state_period", table_name="membership")
    op.drop_index("ix_membership_organisation_period", table_name="membership")

    op.drop_table("membership")
    op.drop_table("state")
    op.drop_table("source")
    op.drop_table("organisation")
