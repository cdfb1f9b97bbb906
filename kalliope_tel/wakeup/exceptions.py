from kalliope_tel.errors import KalliopeError


class WakeupError(KalliopeError):
    pass


class AlarmNotFound(WakeupError):
    pass


class InvalidAlarm(WakeupError):
    pass
