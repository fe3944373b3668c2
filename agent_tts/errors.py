"""Errors that carry a one-line message naming the problem and the fix."""


class AgentTTSError(Exception):
    """Base class for every error agent-tts reports to a user."""


class CheckpointError(AgentTTSError):
    """A model file is missing, truncated, foreign, or of the wrong kind."""


class UnsupportedVersionError(CheckpointError):
    """A model file is valid but of a GPT-SoVITS version not implemented yet."""


class ReferenceAudioError(AgentTTSError):
    """A reference clip cannot be read or is outside the accepted length."""


class OptionError(AgentTTSError, ValueError):
    """An option is out of range or unknown (a `ValueError` too, for code that catches that)."""


class EngineBusyError(AgentTTSError):
    """The engine is at its stream limit and its waiting queue is full; try again later."""


class RequestError(AgentTTSError, ValueError):
    """A client's request is malformed, out of range, or has nothing to speak (the server answers 400)."""


class VoiceNotFoundError(RequestError):
    """A request names a voice that is not registered."""


class ForbiddenPathError(AgentTTSError):
    """A client named a file outside the directories the server's operator allows (the server answers 403)."""


class AudioDeviceError(AgentTTSError):
    """No usable sound device, or the device failed."""


class DeviceTimeoutError(AudioDeviceError):
    """A PortAudio call did not return in time (the sound server or driver is stuck)."""
