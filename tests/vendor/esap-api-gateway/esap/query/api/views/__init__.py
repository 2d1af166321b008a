from .common_views import *
from .query_views import *
