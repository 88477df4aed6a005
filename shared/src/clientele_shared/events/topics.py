"""Service and topic names."""

DIRECTORY = "directory"
INTERACTIONS = "interactions"
PIPELINE = "pipeline"
CAMPAIGNS = "campaigns"
NOTIFIER = "notifier"
ERP = "erp"
"""The ERP integration: an external subscriber and the publisher of invoices and payments."""

SERVICES = (DIRECTORY, INTERACTIONS, PIPELINE, CAMPAIGNS, NOTIFIER)

ORGANIZATIONS = "clientele.directory.organizations"
PERSONS = "clientele.directory.persons"
EMPLOYEES = "clientele.directory.employees"
ORGANIZATIONS_STATE = "clientele.directory.organizations.state"
EMPLOYEES_STATE = "clientele.directory.employees.state"
PERSONS_STATE = "clientele.directory.persons.state"
DIRECTIONS_STATE = "clientele.directory.directions.state"
LISTS_STATE = "clientele.directory.lists.state"
LIST_MEMBERS_STATE = "clientele.directory.list-members.state"
REGISTER_STATE = "clientele.directory.register.state"
INTERACTION_LOG = "clientele.interactions.interactions"
DEALS = "clientele.pipeline.deals"
TASKS = "clientele.pipeline.tasks"
LEADS = "clientele.pipeline.leads"
CAMPAIGN_EVENTS = "clientele.campaigns.campaigns"
CAMPAIGN_CONSENTS = "clientele.campaigns.consents"
MAILING_RESULTS = "clientele.campaigns.mailing-results"
NOTIFICATION_REQUESTS = "clientele.{service}.notifications"
DELIVERIES = "clientele.notifier.deliveries"
ERP_DOCUMENTS = "clientele.erp.documents"


def notification_requests(service: str) -> str:
    """The topic on which one service asks the notifier to deliver something."""
    return NOTIFICATION_REQUESTS.format(service=service)
