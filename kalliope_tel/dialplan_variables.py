"""Names of the channel variables shared by the dialplan and Python.

One module, so a rename cannot leave the dialplan and the handlers apart
(wazo-agid's dialplan_variables.py does the same).
"""

# Set by the FastAGI server after every request.
AGI_STATUS = "KALLIOPE_AGI_STATUS"
AGI_STATUS_SUCCESS = "SUCCESS"
AGI_STATUS_FAILED = "FAILED"
AGI_ERROR = "KALLIOPE_AGI_ERROR"

# Globals in extensions.conf.
GLOBAL_AGI_URL = "KALLIOPE_AGI"
GLOBAL_ARI_APP = "KALLIOPE_ARI_APP"

# Lab dialling: the extension a lab call pretends to come from.
LAB_FROM = "KT_LAB_FROM"
# "internal" (a phone) or "external" (enters as if from a trunk).
LAB_ORIGIN = "KT_LAB_ORIGIN"

# Name of the prompt being played over AGI, set just before STREAM FILE.
PROMPT = "KALLIOPE_PROMPT"

# Set by the PJSIP endpoint of an internal phone (set_var): who is calling.
FROM_EXTEN = "KALLIOPE_FROM_EXTEN"
# Answers of the hotel handlers.
ROOM_ACTION = "KALLIOPE_ROOM_ACTION"
OUTBOUND_CLASS = "KALLIOPE_OUTBOUND_CLASS"
