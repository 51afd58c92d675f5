from typing import Any

from fastapi import APIRouter

from app.categories import service
from app.categories.schemas import Vocabulary
from app.routing import StrictQueryRoute

router = APIRouter(prefix="/v1/categories", tags=["Vocabulary"], route_class=StrictQueryRoute)


@router.get("", response_model=Vocabulary)
def list_categories() -> dict[str, Any]:
    """The controlled vocabulary of event categories, each with its kind, a description and its
    CAMEO codes with Goldstein scores."""
    return service.vocabulary()
