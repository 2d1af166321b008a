from .ida_views import *
