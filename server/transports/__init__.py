"""Where a call enters: stdio and Streamable HTTP, each turning bytes into the SDK's messages and back."""
