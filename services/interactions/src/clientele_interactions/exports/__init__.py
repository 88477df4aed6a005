"""The shared address book (vCard), an employee's meetings (iCalendar) and secret feed URLs."""
