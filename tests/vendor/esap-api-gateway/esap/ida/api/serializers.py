from rest_framework import serializers
from ..models import *
import logging

logger = logging.getLogger(__name__)

class IdaSerializer(serializers.ModelSerializer):
    class Meta():
        model = Ida
        fields = "__all__"
        


class WorkflowSerializer(serializers.ModelSerializer):
    class Meta():
        model = Workflow
        fields = "__all__"
        


class FacilitySerializer(serializers.ModelSerializer):
    class Meta():
        model = Facility
        fields = "__all__"
