"""What the player and the pipecat transport share about sound devices: naming, opening errors, closing."""

from __future__ import annotations


def device_choice(value: str | int | None) -> str | int | None:
    """A device as given on a command line: a number is an index, anything else (part of) a name."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return value


def open_error(kind: str, device: str | int | None, rate: int, reason: object) -> str:
    """One line saying which device could not be opened, why, and how to list the devices."""
    name = "the default device" if device is None else repr(device)
    return f"cannot open the sound {kind} {name} at {rate} Hz: {reason}. List devices with: python -m sounddevice"


def close_stream(stream) -> None:
    """Abort and close a sounddevice stream, whatever state its device is in."""
    if stream is None:
        return
    try:
        stream.abort()
        stream.close()
    except Exception:  # noqa: BLE001 - the device may be gone already
        pass
