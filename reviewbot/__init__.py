"""reviewbot: reviews Linux kernel patch series about memory cgroups and mm->owner."""

__version__ = "0.1.0"
