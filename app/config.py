from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SQLITE_PATH = PROJECT_ROOT / "var" / "timeline.db"


def normalise_database_url(url: str) -> str:
    """Accept plain `postgresql://` URLs and point them at psycopg 3, the driver we ship."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class Settings(BaseSettings):
    """Configuration, read from the environment (and a `.env` file if present)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str = Field(
        default=f"sqlite:///{DEFAULT_SQLITE_PATH}",
        description="SQLAlchemy URL; plain postgresql:// URLs are accepted.",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    cors_origins: list[str] = Field(default=["*"])
    # Signs pagination cursors so a forged or edited cursor is rejected instead of
    # silently paging from an arbitrary position.
    cursor_secret: str = "dev-cursor-secret-change-me"  # noqa: S105 - integrity, not secrecy
    # Bounding DB concurrency near the core count beats a deep thread pool on 2 cores
    # (research/performance-baseline.md).
    db_pool_size: int = 4
    public_base_url: str | None = None
    data_licence: str = "CC BY 4.0"

    @field_validator("database_url")
    @classmethod
    def _normalise(cls, value: str) -> str:
        return normalise_database_url(value)


@lru_cache
def get_settings() -> Settings:
    return Settings()
