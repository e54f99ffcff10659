using System.Diagnostics;
using Vae.Experiments;
using Xunit.Abstractions;

namespace Vae.Tests.Experiments;

/// <summary><c>vae reproduce --executor slurm</c> against a real Slurm started by the tests (<see cref="SlurmCluster"/>):
/// each run is a task of a job array, a dependent job collects them, and the numbers are those of a local run.</summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class SlurmExecutorTests(SlurmCluster cluster, ITestOutputHelper output) : IClassFixture<SlurmCluster>
{
    static readonly string Cli = TestEnvironment.CliDll;

    /// <summary>The vae program in a process of its own, as a user runs it, talking to the test cluster.</summary>
    Task<(int ExitCode, string Output, string Errors)> Vae(params string[] args) =>
        TestEnvironment.RunProcessAsync("dotnet", [Cli, .. args], TestEnvironment.RepositoryRoot, cluster.Environment);

    static IEnumerable<(string, int, long, double, double)> Curves(string directory) =>
        ExperimentResults.FromJson(File.ReadAllText(Path.Combine(directory, "results.json"))).Runs
            .SelectMany(r => r.Series.Select(e => (r.Algorithm, r.LatentDimensions, e.SamplesSeen, e.TrainBound, e.TestBound)));

    [Fact]
    public async Task ASmallGridThroughSlurmGivesTheCurvesOfALocalRun()
    {
        string viaSlurm = TestEnvironment.NewTempDirectory(), local = TestEnvironment.NewTempDirectory();
        string[] grid = ["reproduce", "figure2", "--latent", "2,3", "--budget", "20000", "--train-eval", "500"];
        var clock = Stopwatch.StartNew();
        var slurm = await Vae([.. grid, "--out", viaSlurm, "--executor", "slurm", "--wait"]);
        double slurmSeconds = clock.Elapsed.TotalSeconds;
        Assert.True(slurm.ExitCode == 0, slurm.Output + slurm.Errors);
        Assert.Contains("submitted 4 runs as array job", slurm.Output);
        clock.Restart();
        var here = await Vae([.. grid, "--out", local, "--executor", "local", "--threads", "1"]);
        output.WriteLine($"2 panels x 2 algorithms, 2e4 samples: Slurm {slurmSeconds:F1} s, local {clock.Elapsed.TotalSeconds:F1} s");
        Assert.True(here.ExitCode == 0, here.Errors);

        var curves = Curves(viaSlurm).ToList();
        Assert.Equal(4 * 5, curves.Count); // four runs, each evaluated at 5 log-spaced points from 2000 to 20000 samples
        Assert.Equal(Curves(local), curves);
        Assert.True(File.Exists(Path.Combine(viaSlurm, "figure2.png")));
        Assert.Contains("#SBATCH --array=0-3", File.ReadAllText(Path.Combine(viaSlurm, "slurm", "tasks.sbatch")));
        var status = await Vae("reproduce", "figure2", "--out", viaSlurm, "--status");
        Assert.Equal(4, status.Output.Split('\n').Count(l => l.Contains("20,000") && l.TrimEnd().EndsWith("COMPLETED", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task ATaskSignalledMidRunCheckpointsIsRequeuedAndEndsAsAnUninterruptedRun()
    {
        string dir = TestEnvironment.NewTempDirectory(), reference = TestEnvironment.NewTempDirectory();
        string[] run = ["reproduce", "figure2", "--latent", "2", "--algorithms", "aevb", "--budget", "250000", "--train-eval", "500"];
        // sbatch passes the submitting environment to the task, hook included.
        string held = Path.Combine(TestEnvironment.NewTempDirectory(), "held");
        var submitted = await TestEnvironment.RunProcessAsync("dotnet", [Cli, .. run, "--out", dir, "--executor", "slurm"], TestEnvironment.RepositoryRoot,
            new Dictionary<string, string>(cluster.Environment) { [EvaluationHold.Variable] = held });
        Assert.True(submitted.ExitCode == 0, submitted.Errors);
        var submission = SlurmSubmission.Read(dir)!;
        string task = $"{submission.ArrayJobId}_0", log = Path.Combine(dir, "slurm", "logs", "task-0.out");
        string Log() => File.Exists(log) ? File.ReadAllText(log) : "";

        // Signal the batch shell as Slurm's time-limit warning does, once the run holds mid-run (EvaluationHold: at its
        // first evaluation after a checkpoint exists), whatever the machine's speed.
        await Until(() => File.Exists(held), "the task to hold at an evaluation with a checkpoint on disk");
        Assert.Equal(0, cluster.Command("scancel", "--signal=TERM", "--batch", task).Code);
        await Until(() => Log().Contains("exit 130"), "the task to checkpoint and stop");
        // Slurm holds a requeued job back for the credential lifetime (10 s on the test cluster), then starts it again.
        await Until(() => Log().Contains("restart 1"), "the requeued task to start");
        Assert.Equal(0, await SlurmExecutor.WaitAsync(submission, TimeSpan.FromSeconds(1)));
        Assert.Contains("exit 0", Log()[Log().IndexOf("restart 1", StringComparison.Ordinal)..]);

        var straight = await Vae([.. run, "--out", reference, "--threads", "1"]);
        Assert.True(straight.ExitCode == 0, straight.Errors);
        Assert.Equal(TestRecords.ModelBytes(Path.Combine(reference, "j2-aevb")), TestRecords.ModelBytes(Path.Combine(dir, "j2-aevb")));
        Assert.Equal(Curves(reference), Curves(dir));
    }

    [Fact]
    public async Task AFailedTaskIsReportedByStatusAndTheCollectorDrawsWhatFinished()
    {
        string dir = TestEnvironment.NewTempDirectory();
        // Run 1's directory holds a record short of the budget and no checkpoint, which cannot continue: its task fails.
        Directory.CreateDirectory(Path.Combine(dir, "j2-wake-sleep"));
        File.WriteAllText(Path.Combine(dir, "j2-wake-sleep", "metrics.csv"), "samples,seconds,train_bound,test_bound\n1000,0.1,-300.0,-301.0\n");
        var r = await Vae("reproduce", "figure2", "--latent", "2", "--budget", "20000", "--train-eval", "500", "--out", dir, "--executor", "slurm", "--wait");
        Assert.True(r.ExitCode == 1, r.Output + r.Errors); // the collector ran and named what did not finish
        Assert.Contains("unfinished: j2-wake-sleep (1,000 of 20,000 samples)", r.Output);

        var status = await Vae("reproduce", "figure2", "--out", dir, "--status");
        Assert.Equal(0, status.ExitCode);
        var lines = status.Output.Split('\n');
        Assert.Contains(lines, l => l.Contains("j2-aevb") && l.Contains("20,000") && l.TrimEnd().EndsWith("COMPLETED", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("j2-wake-sleep") && l.Contains("FAILED (exit 2)"));
        Assert.Contains(lines, l => l.StartsWith("       | ", StringComparison.Ordinal) && l.Contains("cannot continue"));

        var results = ExperimentResults.FromJson(File.ReadAllText(Path.Combine(dir, "results.json")));
        Assert.Equal(20_000, results.Runs.Single(x => x.Algorithm == "aevb").Series[^1].SamplesSeen);
        Assert.Contains("j2-wake-sleep", results.Settings["unfinished"]);
        Assert.True(File.Exists(Path.Combine(dir, "figure2.png")));
    }

    [Fact]
    public async Task ASweepThroughSlurmGivesEachSeedTheCurveOfALocalSweep()
    {
        string viaSlurm = TestEnvironment.NewTempDirectory(), local = TestEnvironment.NewTempDirectory();
        string[] sweep = ["sweep", "--seeds", "0-1", "--latent", "2", "--ntrain", "2000", "--samples", "20000", "--eval-every", "10000"];
        var slurm = await Vae([.. sweep, "--out", viaSlurm, "--executor", "slurm", "--wait"]);
        Assert.True(slurm.ExitCode == 0, slurm.Output + slurm.Errors);
        Assert.Contains("over 2 seeds", slurm.Output);
        Assert.Equal(0, (await Vae([.. sweep, "--out", local, "--threads", "1"])).ExitCode);
        var a = SweepResults.FromJson(File.ReadAllText(Path.Combine(viaSlurm, "results.json")));
        var b = SweepResults.FromJson(File.ReadAllText(Path.Combine(local, "results.json")));
        Assert.Equal(b.Summary, a.Summary);
        Assert.Equal(b.Runs.SelectMany(r => r.Series.Select(e => (r.Seed, e.SamplesSeen, e.TrainBound, e.TestBound))),
                     a.Runs.SelectMany(r => r.Series.Select(e => (r.Seed, e.SamplesSeen, e.TrainBound, e.TestBound))));
    }

    static async Task Until(Func<bool> condition, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > TimeSpan.FromMinutes(3)) throw new TimeoutException($"waited 3 minutes for {what}");
            await Task.Delay(200);
        }
    }
}
