#!/bin/sh
echo "You said: $AGENT_MESSAGE"
