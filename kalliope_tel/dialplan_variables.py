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

# Fax: the instance a call is for (generated per PBX), and the answers of the
# res_fax handlers (fax-admit, fax-done) for T.38 callers.
FAX_INSTANCE = "KALLIOPE_FAX_INSTANCE"
FAX_ADMIT = "KALLIOPE_FAX_ADMIT"  # "yes", or the reason for refusing
FAX_SLOT = "KALLIOPE_FAX_SLOT"
FAX_FILE = "KALLIOPE_FAX_FILE"  # where ReceiveFax writes, as Asterisk sees it
FAX_IDENT = "KALLIOPE_FAX_IDENT"
FAX_HEADER = "KALLIOPE_FAX_HEADER"
FAX_ECM = "KALLIOPE_FAX_ECM"
FAX_MINRATE = "KALLIOPE_FAX_MINRATE"
FAX_MAXRATE = "KALLIOPE_FAX_MAXRATE"
FAX_MODEMS = "KALLIOPE_FAX_MODEMS"
FAX_STARTED = "KALLIOPE_FAX_STARTED"
FAX_REACHED = "KALLIOPE_FAX_REACHED"  # the number the caller dialled

# LAM dial-in: the answer of lam-dial-in ("join", "wrong-pin", "closed"), the
# conference (the meeting's instance id) and the ConfBridge user profile.
LAM_RESULT = "KALLIOPE_LAM_RESULT"
LAM_CONFERENCE = "KALLIOPE_LAM_CONFERENCE"
LAM_PROFILE = "KALLIOPE_LAM_PROFILE"

# The service PIN (service-pin): ok, wrong, paused (too many wrong tries) or no_pin.
PIN_RESULT = "KALLIOPE_PIN_RESULT"
