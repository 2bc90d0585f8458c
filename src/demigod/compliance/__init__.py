"""EU AI Act documentation inputs the system knows about itself (`demigod compliance`)."""
