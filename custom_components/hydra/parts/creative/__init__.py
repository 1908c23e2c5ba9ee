"""The creative part: chapters through the pipeline (images, voices, the Ren'Py package), the
action that sends one, a progress sensor per chapter, its events and notifications."""
