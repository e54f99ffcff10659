using Vae.Cli;
using Vae.Experiments;

namespace Vae.Tests.Experiments;

/// <summary><c>vae sweep</c>: each seed's run is <c>vae train --seed S</c>'s, and results.json holds their mean and spread.</summary>
public class SweepTests
{
    static readonly string[] Train = ["--latent", "2", "--ntrain", "2000", "--samples", "20000", "--eval-every", "10000"];

    static IEnumerable<(long, double, double)> Curve(string runDirectory) =>
        ExperimentRuns.ReadMetrics(Path.Combine(runDirectory, "metrics.csv")).Select(e => (e.SamplesSeen, e.TrainBound, e.TestBound));

    [Fact]
    public void EachSeedsCurveIsThatOfVaeTrainWithTheSeedAndTheSummaryIsTheirMeanAndSpread()
    {
        string sweep = TestEnvironment.NewTempDirectory(), single = TestEnvironment.NewTempDirectory();
        var (code, output, err) = Cli.Vae.Run(["sweep", "--seeds", "0-2", .. Train, "--threads", "1", "--out", sweep]);
        Assert.True(code == VaeCommand.Ok, err);
        var trained = Cli.Vae.Run(["train", .. Train, "--seed", "1", "--threads", "1", "--out", single]);
        Assert.True(trained.Code == VaeCommand.Ok, trained.Err);
        Assert.Equal(Curve(single), Curve(Path.Combine(sweep, "seed-1")));
        Assert.NotEqual(Curve(single), Curve(Path.Combine(sweep, "seed-0")));

        var results = SweepResults.FromJson(File.ReadAllText(Path.Combine(sweep, "results.json")));
        Assert.Equal([0L, 1, 2], results.Runs.Select(r => r.Seed));
        Assert.Empty(results.Unfinished);
        var ends = results.Runs.Select(r => r.Series[^1].TestBound).ToArray();
        double mean = ends.Average(), sd = Math.Sqrt(ends.Sum(v => (v - mean) * (v - mean)) / 2);
        var end = results.Summary[^1];
        Assert.Equal((20_000L, 3), (end.SamplesSeen, end.Seeds));
        Assert.Equal(mean, end.TestMean, 12);
        Assert.Equal(sd, end.TestSd, 12);
        Assert.Contains("over 3 seeds", output);
    }

    [Fact]
    public async Task LocalJobsSideBySideGiveTheCurvesOfOneProcess()
    {
        string here = TestEnvironment.NewTempDirectory(), jobs = TestEnvironment.NewTempDirectory();
        Assert.Equal(VaeCommand.Ok, Cli.Vae.Run(["sweep", "--seeds", "3,5", .. Train, "--threads", "1", "--out", here]).Code);
        string cli = TestEnvironment.CliDll;
        var (code, output, errors) = await TestEnvironment.RunProcessAsync("dotnet", [cli, "sweep", "--seeds", "3,5", .. Train, "--out", jobs, "--jobs", "2"], TestEnvironment.RepositoryRoot);
        Assert.True(code == VaeCommand.Ok, output + errors);
        Assert.Contains("2 runs, 2 at a time as processes of their own", output);
        Assert.Contains("task 1 (seed-5): exit 0", output);
        foreach (var seed in new[] { "seed-3", "seed-5" })
            Assert.Equal(Curve(Path.Combine(here, seed)), Curve(Path.Combine(jobs, seed)));
        Assert.Contains("finished at 20,000 samples", File.ReadAllText(Path.Combine(jobs, "local", "logs", "task-0.out")));
    }

    [Theory]
    [InlineData("sweep")]
    [InlineData("sweep", "--seeds", "3-1")]
    [InlineData("sweep", "--seeds", "a")]
    [InlineData("sweep", "--seeds", "0-1", "--epochs", "2")]
    [InlineData("sweep", "--seeds", "0-1", "--jobs", "2", "--executor", "slurm")]
    [InlineData("sweep", "--seeds", "0-1", "--task", "2")]
    public void BadSweepOptionsAreOneLineAndExitCode2(params string[] args)
    {
        var (code, _, err) = Cli.Vae.Run(args);
        Assert.Equal(VaeCommand.BadUsage, code);
        Assert.StartsWith("vae: ", err);
        Assert.Single(err.TrimEnd().Split('\n'));
    }
}
