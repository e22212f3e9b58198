"""Hidden Cafe: a deterministic demo company (Odoo ERP, HubSpot CRM, GA4, Google and Trustpilot reviews).

    from demo_company import generate
    manifest = generate("var/demo/S-42", scale="S", seed=42)
"""
from .config import DEFAULT_DIRT, SCALES
from .generator import generate

__all__ = ["generate", "DEFAULT_DIRT", "SCALES"]
