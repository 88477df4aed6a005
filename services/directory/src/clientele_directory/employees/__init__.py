"""Employees: the company's users, their roles, directions and managers."""
