"""Voice services: wake word, speech-to-text and text-to-speech over Wyoming."""
