"""The course hub: JupyterHub for a class, with nbgrader's exchange hardened by the kit (INSTRUCTORS.md)."""
