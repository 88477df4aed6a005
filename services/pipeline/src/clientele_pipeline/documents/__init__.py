"""ERP documents (invoices, payments, shipments) attached to deals and clients."""
