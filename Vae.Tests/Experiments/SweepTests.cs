using Vae.Cli;
using Vae.Experiments;

namespace Vae.Tests.Experiments;

/// <summary><c>vae sweep</c>: each seed's run is <c>vae train --seed S</c>'s, and results.json holds their mean and spread.</summary>
public class SweepTests
{
    static readonly string[] Train = ["--latent", "2", "--ntrain", "2000", "--samples", "20000", "--eval-every", "10000"];

    [Fact]
    public void EachSeedsCurveIsThatOfVaeTrainWithTheSeedAndTheSummaryIsTheirMeanAndSpread()
    {
        string sweep = TestEnvironment.NewTempDirectory(), single = TestEnvironment.NewTempDirectory();
        var (code, output, err) = Cli.Vae.Run(["sweep", "--seeds", "0-2", .. Train, "--threads", "1", "--out", sweep]);
        Assert.True(code == VaeCommand.Ok, err);
        var trained = Cli.Vae.Run(["train", .. Train, "--seed", "1", "--threads", "1", "--out", single]);
        Assert.True(trained.Code == VaeCommand.Ok, trained.Err);
        Assert.Equal(TestRecords.Curve(single), TestRecords.Curve(Path.Combine(sweep, "seed-1")));
        Assert.NotEqual(TestRecords.Curve(single), TestRecords.Curve(Path.Combine(sweep, "seed-0")));

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
    public void ASweepStartedAgainContinuesEachSeedFromItsCheckpointAsIfUninterrupted()
    {
        string whole = TestEnvironment.NewTempDirectory(), stopped = TestEnvironment.NewTempDirectory();
        void Ok((int Code, string Out, string Err) r) => Assert.True(r.Code == VaeCommand.Ok, r.Err + r.Out);
        string[] sweep = ["sweep", "--seeds", "0-2", .. Train, "--threads", "1"];
        Ok(Cli.Vae.Run([.. sweep, "--out", whole]));
        // A sweep stopped during seed 1: seed 0 finished, seed 1 checkpointed at 10,000 of its 20,000 samples, seed 2 not begun.
        Ok(Cli.Vae.Run(["train", .. Train, "--seed", "0", "--threads", "1", "--out", Path.Combine(stopped, "seed-0")]));
        string[] half = [.. Train.Select(a => a == "20000" ? "10000" : a)];
        Ok(Cli.Vae.Run(["train", .. half, "--seed", "1", "--threads", "1", "--out", Path.Combine(stopped, "seed-1")]));
        byte[] seedZero = File.ReadAllBytes(Path.Combine(stopped, "seed-0", Trainer.CheckpointFileName));
        Ok(Cli.Vae.Run([.. sweep, "--out", stopped]));
        foreach (string seed in new[] { "seed-0", "seed-1", "seed-2" })
        {
            Assert.Equal(TestRecords.Curve(Path.Combine(whole, seed)), TestRecords.Curve(Path.Combine(stopped, seed)));
            Assert.True(File.ReadAllBytes(Path.Combine(whole, seed, Trainer.CheckpointFileName)).SequenceEqual(File.ReadAllBytes(Path.Combine(stopped, seed, Trainer.CheckpointFileName))),
                        $"{seed}: the checkpoint differs from the uninterrupted sweep's");
        }
        Assert.Equal(seedZero, File.ReadAllBytes(Path.Combine(stopped, "seed-0", Trainer.CheckpointFileName))); // a finished seed is left alone
        var a = SweepResults.FromJson(File.ReadAllText(Path.Combine(whole, "results.json")));
        var b = SweepResults.FromJson(File.ReadAllText(Path.Combine(stopped, "results.json")));
        Assert.Equal(a.Summary, b.Summary);
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
            Assert.Equal(TestRecords.Curve(Path.Combine(here, seed)), TestRecords.Curve(Path.Combine(jobs, seed)));
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
