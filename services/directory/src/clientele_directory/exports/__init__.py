"""Export of organizations to .xlsx or CSV."""
