from .harvester import *
