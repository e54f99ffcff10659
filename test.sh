#!/usr/bin/env bash
# Runs every test of the solution: the xunit project (Vae.Tests) and the Expecto property program
# (Vae.Properties). Set-up included: restore, build (with the libtorch load fix), data acquisition.
# The last line is "N passed, N failed" for all of them together; the exit code is non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")"
config=${CONFIG:-Release}
# Tests run libtorch single-threaded, one test at a time (see xunit.runner.json).
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 DOTNET_CLI_TELEMETRY_OPTOUT=1
# Frey Face has no reachable download here: the machine keeps a copy beside the checkout.
if [ -z "${VAE_FREY_FACE:-}" ] && [ -f ../shared/data/frey_rawface.mat ]; then
  export VAE_FREY_FACE="$(cd ../shared/data && pwd)/frey_rawface.mat"
fi

# Restore against the lock files. A machine whose package cache holds another build of a locked
# package (NU1403: same version, other content hash) gets a packages folder of the checkout's own.
restore_log=$(mktemp)
dotnet restore Vae.sln -nologo 2>&1 | tee "$restore_log" || true
if grep -q NU1403 "$restore_log"; then
  echo "the package cache differs from the lock files: restoring into .packages/ instead"
  export NUGET_PACKAGES="$PWD/.packages"
fi
dotnet build Vae.sln -c "$config" -nologo -clp:NoSummary -v:minimal || { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }

vae="dotnet Vae.Cli/bin/$config/net10.0/Vae.Cli.dll"
$vae data fetch mnist || { echo "MNIST could not be acquired"; echo "0 passed, 1 failed"; exit 1; }
# Without Frey Face only its tests fail (each says what is missing); the rest still run.
$vae data fetch frey-face || echo "warning: Frey Face could not be acquired (set VAE_FREY_FACE to frey_rawface.mat)"


results=$(mktemp -d)
# One xunit process per core: the experiments, examples, committed models and collection races beside the rest (563
# and 549 s in the CI of 3f035bb), each single-threaded and one test at a time (xunit.runner.json); then, alone,
# the tests that run libtorch on two threads (trait Cores=2), since two threads collapse on a busy core. The signal
# tests stay in the foreground part: a background job ignores SIGINT. Each part's console log follows when it ends.
xunit_part() {
  dotnet test Vae.Tests -c "$config" --no-build --filter "$2" \
    --logger "trx;LogFileName=$results/xunit-$1.trx" --logger "console;verbosity=normal" > "$results/xunit-$1.log" 2>&1
}
background="FullyQualifiedName~Vae.Tests.Experiments.|FullyQualifiedName~Vae.Tests.Examples.|FullyQualifiedName~Vae.Tests.Models.|FullyQualifiedName~Vae.Tests.Training.CollectionRaceTests"
xunit_part experiments "($background)&Cores!=2" &
experiments_pid=$!
# A background job ignores Ctrl-C in a script: stop it with the script.
trap 'kill "$experiments_pid" 2>/dev/null; exit 130' INT TERM
xunit_part rest "FullyQualifiedName!~Vae.Tests.Experiments.&FullyQualifiedName!~Vae.Tests.Examples.&FullyQualifiedName!~Vae.Tests.Models.&FullyQualifiedName!~Vae.Tests.Training.CollectionRaceTests&Cores!=2"
rest_code=$?
cat "$results/xunit-rest.log"
wait "$experiments_pid"
experiments_code=$?
trap - INT TERM
cat "$results/xunit-experiments.log"
xunit_part two-cores "Cores=2"
two_cores_code=$?
cat "$results/xunit-two-cores.log"
xunit_code=$(( rest_code | experiments_code | two_cores_code ))
dotnet "Vae.Properties/bin/$config/net10.0/Vae.Properties.dll" --summary | tee "$results/expecto.log"
expecto_code=${PIPESTATUS[0]}

# Counts: the TRX counters of the three xunit parts, and the Expecto program's own "N passed, N failed" line.
xp=0; xf=0
for part in rest experiments two-cores; do
  trx="$results/xunit-$part.trx"
  p=$(grep -o 'passed="[0-9]*"' "$trx" 2>/dev/null | head -1 | grep -o '[0-9]*')
  f=$(grep -o 'failed="[0-9]*"' "$trx" 2>/dev/null | head -1 | grep -o '[0-9]*')
  # A part that died before writing its counts counts as one failure.
  if [ -n "$p" ]; then xp=$(( xp + p )); xf=$(( xf + ${f:-0} )); else echo "xunit part $part wrote no counts"; xf=$(( xf + 1 )); fi
done
summary=$(sed 's/\x1b\[[0-9;]*m//g' "$results/expecto.log" | grep -oE '^[0-9]+ passed, [0-9]+ failed' | tail -1)
ep=$(echo "$summary" | cut -d' ' -f1)
ef=$(echo "$summary" | cut -d' ' -f3)
# A program that died before reporting counts as one failure.
[ -n "$ep" ] || { ep=0; ef=1; }
failed=$(( xf + ef ))
[ "$xunit_code" -eq 0 ] && [ "$expecto_code" -eq 0 ] || [ "$failed" -gt 0 ] || failed=1
# The 15 slowest xunit tests (from the TRX files) and the suite's wall time, for the CI log.
if command -v python3 >/dev/null; then
  python3 - "$results"/xunit-*.trx <<'PY' || true
import sys, xml.etree.ElementTree as ET
ns = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}
def seconds(d):
  h, m, s = d.split(":")
  return int(h) * 3600 + int(m) * 60 + float(s)
rows = []
for trx in sys.argv[1:]:
  try:
    for r in ET.parse(trx).getroot().iterfind(".//t:UnitTestResult", ns):
      if r.get("duration"): rows.append((seconds(r.get("duration")), r.get("testName")))
  except Exception:
    pass
print("the 15 slowest xunit tests:")
for d, name in sorted(rows, reverse=True)[:15]:
  print(f"  {d:8.1f} s  {name}")
PY
fi
echo "wall time: $SECONDS s"
# The failed xunit tests again, with the first lines of their messages, where the end of the log is read.
if [ "${xf:-0}" -gt 0 ] && command -v python3 >/dev/null; then
  python3 - "$results"/xunit-*.trx <<'PY' || true
import sys, xml.etree.ElementTree as ET
ns = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}
for trx in sys.argv[1:]:
  try:
    root = ET.parse(trx).getroot()
  except (OSError, ET.ParseError) as e:
    print("unreadable:", trx, e)
    continue
  for r in root.iterfind(".//t:UnitTestResult[@outcome='Failed']", ns):
    message = r.findtext(".//t:ErrorInfo/t:Message", "", ns).strip().splitlines()
    print("failed:", r.get("testName"))
    for line in message[:6]:
        print("    " + line)
PY
fi
echo "xunit: $xp passed, $xf failed; expecto: $ep passed, $ef failed"
echo "$(( xp + ep )) passed, $failed failed"
[ "$failed" -eq 0 ]
