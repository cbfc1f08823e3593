"""What a person sees: progress bars, status, pictures."""
