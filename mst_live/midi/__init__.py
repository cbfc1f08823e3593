"""MIDI control: mappings from controller messages to live parameters, and the port reader."""
