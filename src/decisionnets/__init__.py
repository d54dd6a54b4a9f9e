"""decisionnets: what does my network know, and when did it learn it?"""

__version__ = "0.1.0"
