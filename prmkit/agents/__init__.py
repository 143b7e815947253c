"""Multi-turn agents: the environment interface, episodes, and hopgym (a tool-use gym with exact turn gold)."""
