"""Hand-over: an employee's open planned contacts move to another, for one client or in bulk."""
