from .batch_views import *
