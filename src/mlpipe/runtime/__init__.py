"""What every layer runs on: operator logs, external tools (git, dvc), lock files, the project lock,
local servers."""
