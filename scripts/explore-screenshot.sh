#!/usr/bin/env bash
# The latent-space page of the committed Frey Face J = 2 model (seed 1, 10^8 samples) and its screenshot for docs/GUIDE.md,
# taken by Debian's Chromium headless. Run from the repository root after building; writes docs/images/explore-frey-face-j2.png.
set -euo pipefail
out=$(mktemp -d)
dotnet Vae.Cli/bin/Release/net10.0/Vae.Cli.dll explore --checkpoint models/figure2-frey-face/j2-aevb-seed1.safetensors --out "$out/frey-j2.html"
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1240,1080 --virtual-time-budget=5000 \
  --screenshot="$PWD/docs/images/explore-frey-face-j2.png" "file://$out/frey-j2.html" 2>/dev/null
rm -r "$out"
