"""Signal processing: STFT framing, phase reconstruction, levels."""
