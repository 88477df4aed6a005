"""Stage playbooks on a deal: fields still missing, the checklist ticked, the call script."""
