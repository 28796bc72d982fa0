"""`make bench`: the waits of students and instructors, measured on this machine."""
