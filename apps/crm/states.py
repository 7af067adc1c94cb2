"""Customer statuses and the moves between them (apps.core.states)."""

from apps.core.states import StateMachine, register

from .models import CustomerStatus

CUSTOMER_STATES = StateMachine(
    start=(CustomerStatus.PROSPECT, CustomerStatus.ACTIVE),
    moves={
        CustomerStatus.PROSPECT: (CustomerStatus.ACTIVE,),
        CustomerStatus.ACTIVE: (CustomerStatus.INACTIVE, CustomerStatus.SUSPENDED),
        CustomerStatus.INACTIVE: (CustomerStatus.ACTIVE,),
        CustomerStatus.SUSPENDED: (CustomerStatus.ACTIVE,),
    },
)

register("crm.Customer", CUSTOMER_STATES)
