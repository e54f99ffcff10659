using System.Text.Json;
using Vae.Cli;
using Vae.Experiments;

namespace Vae.Tests.Experiments;

public class IwaeTableTests
{
    static readonly string[] Small =
        ["reproduce", "iwae-table", "--k", "1,2", "--passes", "0.02", "--train-eval", "200", "--end-points", "50", "--end-point-k", "10", "--threads", "1"];

    static Dictionary<string, string> Options(string runDirectory) =>
        File.ReadLines(Path.Combine(runDirectory, "options.txt")).Select(l => l.Split(" = ", 2)).ToDictionary(f => f[0], f => f[1]);

    [Fact]
    public void TheTableTrainsBurdasSettingsOncePerObjectiveAndKWritesItsEndPointsAndSkipsFinishedRuns()
    {
        string dir = TestEnvironment.NewTempDirectory();
        var (code, output, err) = Vae.Tests.Cli.Vae.Run([.. Small, "--out", dir]);
        Assert.True(code == VaeCommand.Ok, err);
        var results = ExperimentResults.FromJson(File.ReadAllText(Path.Combine(dir, "results.json")));
        Assert.Equal("iwae-table", results.Experiment);
        Assert.StartsWith("binarized MNIST", results.Dataset);
        // (IWAE, 1) is the function of (VAE, 1): one run fills both cells.
        Assert.Equal(["vae-k1", "vae-k2", "iwae-k2"], results.Runs.Select(r => Path.GetFileName(r.Directory)));
        Assert.Equal(["vae", "vae", "iwae"], results.Runs.Select(r => r.Objective));
        Assert.Equal([1, 2, 2], results.Runs.Select(r => r.K));
        foreach (var run in results.Runs)
        {
            // Burda et al.'s networks, optimiser, schedule, minibatch and dynamic binarisation, as each run records them.
            var o = Options(run.Directory);
            Assert.Equal(("200", "2", "50", "20"), (o["hidden"], o["hidden_layers"], o["latent"], o["batch"]));
            Assert.Equal(("Adam", "0.001", "Burda", "dynamic"), (o["optimizer"], o["step_size"], o["step_size_schedule"], o["binarize"]));
            Assert.Equal(run.K.ToString(), o["samples_per_datapoint"]);
            // Maximum likelihood, as Burda et al.'s text and code: no prior on the weights.
            Assert.Equal("False", o["weight_prior"]);
            Assert.Equal(("0.9", "KingmaBa"), (o["adam_beta1"], o["adam_variant"]));
            // The VAE rows average k log weights by estimator A, as Burda et al.'s code; the IWAE rows name their objective.
            Assert.Equal(run.Objective == "vae" ? "A" : "ImportanceWeighted", run.Objective == "vae" ? o["estimator"] : o["objective"]);
            Assert.Equal(1200, run.Series[^1].SamplesSeen);
            // The end point: test log p(x) by K = 10 importance samples, at least the test bound on the same 50 images
            // (in expectation; by far here), and the active units among J = 50.
            var end = run.EndPoint!;
            Assert.Equal((50, 10), (end["test_points"].GetInt32(), end["k"].GetInt32()));
            Assert.True(end["test_iwae"].GetDouble() > end["test_elbo"].GetDouble(), $"{run.Directory}: {end["test_iwae"]} <= {end["test_elbo"]}");
            Assert.InRange(end["active_units"].GetInt32(), 0, 50);
            Assert.Equal(50, end["latent_activity"].GetArrayLength());
        }
        Assert.StartsWith("none", results.Settings["weight_prior"]);
        string table = File.ReadAllText(Path.Combine(dir, "table.md"));
        Assert.Contains("| IWAE | 1 | vae-k1 |", table);
        Assert.Contains("| 86.76 |", table);
        Assert.Contains("| IWAE | 2 | iwae-k2 |", table);
        Assert.True(File.Exists(Path.Combine(dir, IwaeTable.FigureFileName)));
        Assert.Contains("wrote", output);

        // Again: every run is finished and keeps its end point; nothing trains and the results are the same.
        var again = Vae.Tests.Cli.Vae.Run([.. Small, "--out", dir]);
        Assert.True(again.Code == VaeCommand.Ok, again.Err);
        Assert.Equal(3, again.Out.Split("skipped").Length - 1);
        Assert.DoesNotContain("end point:", again.Out);
        var same = ExperimentResults.FromJson(File.ReadAllText(Path.Combine(dir, "results.json")));
        Assert.Equal(results.Runs.SelectMany(r => r.Series), same.Runs.SelectMany(r => r.Series));
        Assert.Equal(table, File.ReadAllText(Path.Combine(dir, "table.md")));
    }

    [Fact]
    public void JobsTrainEachRunAsAProcessOfItsOwnAndTheCollectorWritesTheTable()
    {
        string dir = TestEnvironment.NewTempDirectory();
        var (code, output, err) = Vae.Tests.Cli.Vae.Run([.. Small, "--jobs", "2", "--out", dir]);
        Assert.True(code == VaeCommand.Ok, err + output);
        foreach (string task in new[] { "task 0 (vae-k1): exit 0", "task 1 (vae-k2): exit 0", "task 2 (iwae-k2): exit 0" }) Assert.Contains(task, output);
        Assert.Contains("| IWAE | 2 | iwae-k2 | 0.02 |", File.ReadAllText(Path.Combine(dir, "table.md")));
        var results = ExperimentResults.FromJson(File.ReadAllText(Path.Combine(dir, "results.json")));
        Assert.Equal([1, 2, 2], results.Runs.Select(r => r.K));
        Assert.All(results.Runs, r => Assert.NotNull(r.EndPoint));
        Assert.True(File.Exists(Path.Combine(dir, IwaeTable.FigureFileName)));
    }

    static ExperimentRun Run(string name, string objective, int k, double? testIwae, int? active) =>
        new ExperimentRun("aevb", 50, Path.Combine("runs", name), true, [new EvaluationResult(60_000L * 3280, 1, -90, -91)],
            EndPoint: testIwae is double v
                ? JsonSerializer.Deserialize<Dictionary<string, JsonElement>>($$"""{"test_iwae": {{v}}, "active_units": {{active}}}""")
                : null)
        { Objective = objective, K = k };

    [Fact]
    public void RowsSetEachCellBesideBurdasValueAndFillIwaeAtOneFromTheVaeRun()
    {
        var results = new ExperimentResults("iwae-table", "binarized MNIST", 60_000L * 3280, 0, new Dictionary<string, string> { ["train_images"] = "60000", ["test_k"] = "5000" },
            "lower bound per datapoint (nats)",
            [Run("vae-k1", "vae", 1, -86.90, 19), Run("vae-k5", "vae", 5, -86.40, 20), Run("iwae-k5", "iwae", 5, null, null), Run("iwae-k7", "iwae", 7, -85.0, 23)],
            1, MachineFacts.Current());
        var rows = IwaeTable.Rows(results);
        Assert.Equal(["VAE 1", "IWAE 1", "VAE 5", "IWAE 5", "IWAE 7"], rows.Select(r => $"{r.Objective} {r.K}"));
        Assert.Equal(["vae-k1", "vae-k1", "vae-k5", "iwae-k5", "iwae-k7"], rows.Select(r => r.Run));
        Assert.All(rows, r => Assert.Equal(3280, r.Passes));
        Assert.Equal(86.90, rows[1].TestNll!.Value, 12);
        Assert.Equal(0.14, rows[1].Difference!.Value, 12);
        Assert.Equal(-0.07, rows[2].Difference!.Value, 12);
        Assert.Equal(19, rows[0].ActiveUnits);
        // A run without an end point has no value; a k the table lacks has no Burda value.
        Assert.Null(rows[3].TestNll);
        Assert.Equal(85.54, rows[3].BurdaNll);
        Assert.Null(rows[3].Difference);
        Assert.Null(rows[4].BurdaNll);
        Assert.Contains("| VAE | 5 | vae-k5 | 3280 | 86.40 | 86.47 | -0.07 | 20 |", IwaeTable.Markdown(results));
    }

    [Fact]
    public void IwaeAtOneRunsOnItsOwnOnlyWithoutTheVaeObjective()
    {
        Assert.Equal(["vae-k1", "vae-k5", "iwae-k5", "vae-k50", "iwae-k50"], IwaeTable.Tasks(new IwaeTableOptions()).Select(t => t.Name));
        Assert.Equal(["iwae-k1", "iwae-k5"], IwaeTable.Tasks(new IwaeTableOptions { Ks = [1, 5], Objectives = [TrainingObjective.ImportanceWeighted] }).Select(t => t.Name));
        Assert.Equal([1.0, 4, 13, 40, 121, 364, 1093, 3280], IwaeTable.StageEnds);
    }

    [Theory]
    [InlineData("--objectives", "vae,elbo", "--objectives: unknown objective 'elbo'")]
    [InlineData("--k", "0,5", "--k: expected integers from 1")]
    [InlineData("--end-points", "some", "--end-points: expected a number of test images")]
    [InlineData("--passes", "0", "--passes")]
    public void BadOptionsAreRefusedNamingTheOption(string option, string value, string message)
    {
        // Short settings beside the bad one, so that an option wrongly accepted fails the test in seconds.
        string[] quick = option == "--passes" ? [] : ["--passes", "0.001"];
        var (code, _, err) = Vae.Tests.Cli.Vae.Run(["reproduce", "iwae-table", option, value, .. quick, "--end-point-k", "0", "--train-eval", "10", "--threads", "1",
                                                    "--out", TestEnvironment.NewTempDirectory()]);
        Assert.NotEqual(VaeCommand.Ok, code);
        Assert.Contains(message, err);
    }
}
