"""pipecat adapters: the TTS service, the clause-first text aggregator, a sounddevice transport, a WebRTC VAD.

Import the classes from their modules (this package does not import pipecat
until one of them is used):

    from agent_tts.pipecat.tts_service import GPTSoVITSTTSService
    from agent_tts.pipecat.clause_aggregator import ClauseFirstTextAggregator
    from agent_tts.pipecat.sounddevice_transport import SoundDeviceTransport
    from agent_tts.pipecat.webrtc_vad import WebRTCVADAnalyzer
"""
