from typing import Any

from app.vocabulary import CAMEO, CATEGORIES


def _cameo(code: str) -> dict[str, Any]:
    c = CAMEO[code]
    return {"code": c.code, "name": c.name, "goldstein": c.goldstein}


def vocabulary() -> dict[str, Any]:
    return {
        "items": [
            {
                "slug": c.slug,
                "kind": c.kind.value,
                "label": c.label,
                "description": c.description,
                "cameo": [_cameo(code) for code in c.cameo],
            }
            for c in CATEGORIES.values()
        ],
        "cameo_codes": [_cameo(code) for code in CAMEO],
    }
