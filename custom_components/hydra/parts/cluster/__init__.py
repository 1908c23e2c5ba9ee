"""The cluster part: the Ray nodes a head worker places tasks on, in Home Assistant."""
