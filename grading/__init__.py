"""Instructor tools for the homework (nbgrader): grade a class, build the student bundle, and the
feedback filter that keeps hidden tests out of what students get back. See INSTRUCTORS.md."""
