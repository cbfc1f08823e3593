"""Everything that touches the outside world: files, audio devices, MIDI."""
