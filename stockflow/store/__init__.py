"""Reading and writing state through the database (one module per kind of state)."""
