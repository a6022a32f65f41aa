#!/usr/bin/env bash
# Runs the whole test suite offline (provides Node 22 first if the system Node is older).
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
npm test
