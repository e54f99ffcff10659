using System.Buffers.Binary;
using System.Text.Json;
using Vae.Cli;
using Vae.Data;
using Vae.Experiments;

namespace Vae.Tests.Experiments;

public class ReproduceFigure2Tests
{
    static readonly string[] Small = ["reproduce", "figure2", "--latent", "2", "--train-eval", "500", "--threads", "1"];

    [Fact]
    public void WithoutLatentTheDatasetsFivePanelsAreReproduced()
    {
        // The documented command names no --latent: MNIST's panels are J = 3, 5, 10, 20 and 200 (one step each here).
        string dir = TestEnvironment.NewTempDirectory();
        var (code, output, err) = Vae.Tests.Cli.Vae.Run("reproduce", "figure2", "--algorithms", "aevb", "--budget", "100", "--train-eval", "100", "--threads", "1", "--out", dir);
        Assert.True(code == VaeCommand.Ok, err);
        Assert.Contains("J = 3, 5, 10, 20, 200,", output);
        var results = ExperimentResults.FromJson(File.ReadAllText(Path.Combine(dir, "results.json")));
        Assert.Equal([3, 5, 10, 20, 200], results.Runs.Select(r => r.LatentDimensions));
    }

    [Fact]
    public void Figure2WritesResultsAndAFigureSkipsFinishedRunsAndContinuesToALargerBudget()
    {
        string dir = TestEnvironment.NewTempDirectory();
        var (code, output, err) = Vae.Tests.Cli.Vae.Run([.. Small, "--budget", "2000", "--out", dir]);
        Assert.True(code == VaeCommand.Ok, err);
        var results = ExperimentResults.FromJson(File.ReadAllText(Path.Combine(dir, "results.json")));
        Assert.Equal("figure2", results.Experiment);
        Assert.Equal(["aevb", "wake-sleep"], results.Runs.Select(r => r.Algorithm));
        foreach (var run in results.Runs)
        {
            // Log-spaced points from a tenth of the budget, ending at the budget; bounds finite and rising from the start.
            Assert.Equal([200L, 400, 700, 1200, 2000], run.Series.Select(e => e.SamplesSeen));
            Assert.All(run.Series, e => Assert.True(double.IsFinite(e.TrainBound) && double.IsFinite(e.TestBound)));
            Assert.True(run.Series[^1].TestBound > run.Series[0].TestBound, $"{run.Algorithm}: {run.Series[0].TestBound} -> {run.Series[^1].TestBound}");
            Assert.True(File.Exists(Path.Combine(run.Directory, "checkpoint.safetensors")));
        }
        Assert.Equal((420, 420), TestRecords.PngSize(Path.Combine(dir, "figure2.png")));
        Assert.Contains("wrote", output);

        // Again: both runs are finished, so nothing trains and the curves are unchanged.
        var again = Vae.Tests.Cli.Vae.Run([.. Small, "--budget", "2000", "--out", dir]);
        Assert.Equal(VaeCommand.Ok, again.Code);
        Assert.Equal(2, again.Out.Split("skipped").Length - 1);
        var same = ExperimentResults.FromJson(File.ReadAllText(Path.Combine(dir, "results.json")));
        Assert.Equal(results.Runs.SelectMany(r => r.Series), same.Runs.SelectMany(r => r.Series));

        // A larger budget continues each run from its checkpoint: the earlier points stay, new ones follow.
        var more = Vae.Tests.Cli.Vae.Run([.. Small, "--budget", "4000", "--out", dir]);
        Assert.True(more.Code == VaeCommand.Ok, more.Err);
        var longer = ExperimentResults.FromJson(File.ReadAllText(Path.Combine(dir, "results.json")));
        foreach (var (before, after) in results.Runs.Zip(longer.Runs))
        {
            Assert.False(after.Skipped);
            Assert.Equal(before.Series, after.Series.Take(before.Series.Count));
            Assert.Equal(4000, after.Series[^1].SamplesSeen);
        }
    }

    [Fact]
    public void StepSizeAutoChoosesEachRunsStepSizeBySectionFivesTrialsAndRecordsThem()
    {
        string dir = TestEnvironment.NewTempDirectory();
        var data = DataSets.MnistPaper(TestEnvironment.CachedData).WithFirstTrainingImages(1000);
        var options = Figure2Options.Mnist with
        {
            LatentDimensions = [2], HiddenUnits = 30, Budget = 3000, StepSize = null, StepSizeTrialSamples = 15_000,
            Algorithms = [TrainingAlgorithm.WakeSleep], TrainEvaluationLimit = 500, OutputDirectory = dir,
        };
        var results = Figure2.Run(data, options);
        var run = Assert.Single(results.Runs);
        Assert.Equal("wake-sleep", run.Algorithm);
        // Every candidate was tried; the run trains with the one of the highest training bound, recorded in its options.
        var trials = run.StepSizeTrials!;
        Assert.Equal([0.01, 0.02, 0.1], trials.Select(t => t.StepSize));
        Assert.Equal(trials.MaxBy(t => t.TrainingBound)!.StepSize, run.StepSize);
        Assert.Equal(run.StepSize, Trainer.Resume(run.Directory).Options.StepSize);
        Assert.Contains("chosen per run", results.Settings["step_size"]);
        Assert.Equal(ExperimentResults.BuildCommit, results.Commit);
        Assert.Matches("^[0-9a-f]{40}$", results.Commit!);
    }

    [Fact]
    public void EndPointsAllEstimatesEachFinishedRunOnceOnEveryTrainingAndTestImage()
    {
        // RESULTS.md's end points: the bound on the whole training and test sets, and the importance-weighted estimate
        // on the test set only, written when a run reaches its budget.
        string dir = TestEnvironment.NewTempDirectory();
        string[] args = [.. Small, "--budget", "400", "--end-points", "all", "--end-point-k", "7", "--out", dir];
        var (code, output, err) = Vae.Tests.Cli.Vae.Run(args);
        Assert.True(code == VaeCommand.Ok, err);
        var results = ExperimentResults.FromJson(File.ReadAllText(Path.Combine(dir, "results.json")));
        foreach (var run in results.Runs)
        {
            var e = run.EndPoint ?? throw new Xunit.Sdk.XunitException($"{run.Algorithm}: no end point in results.json");
            Assert.Equal((50_000, 10_000, 7), (e["train_points"].GetInt32(), e["test_points"].GetInt32(), e["k"].GetInt32()));
            Assert.False(e.ContainsKey("train_iwae"));
            double trainBound = e["train_elbo"].GetDouble(), testBound = e["test_elbo"].GetDouble(), iwae = e["test_iwae"].GetDouble();
            // The test bound is the curve's last point up to the noise draw; K = 7 importance samples lie above the bound.
            Assert.InRange(testBound, run.Series[^1].TestBound - 1, run.Series[^1].TestBound + 1);
            Assert.True(double.IsFinite(trainBound), $"{run.Algorithm}: train bound {trainBound}");
            Assert.True(iwae > testBound, $"{run.Algorithm}: IWAE {iwae} <= bound {testBound}");
        }
        Assert.Equal(2, output.Split("end point:").Length - 1);
        // The estimators and the seed of `vae evaluate --k 7` (its fields test_bound and test_iwae).
        var (evaluated, json, evaluateErr) = Vae.Tests.Cli.Vae.Run("evaluate", "--checkpoint", results.Runs[0].Directory, "--k", "7", "--threads", "1", "--json");
        Assert.True(evaluated == VaeCommand.Ok, evaluateErr);
        using (var same = JsonDocument.Parse(json))
        {
            Assert.Equal(same.RootElement.GetProperty("test_bound").GetDouble(), results.Runs[0].EndPoint!["test_elbo"].GetDouble(), 1e-9);
            Assert.Equal(same.RootElement.GetProperty("test_iwae").GetDouble(), results.Runs[0].EndPoint!["test_iwae"].GetDouble(), 1e-9);
        }
        // Finished runs keep theirs: a second invocation estimates nothing again.
        string[] files = [.. results.Runs.Select(r => Path.Combine(r.Directory, ExperimentRuns.EndPointFileName))];
        var before = files.Select(File.ReadAllBytes).ToList();
        var again = Vae.Tests.Cli.Vae.Run(args);
        Assert.True(again.Code == VaeCommand.Ok, again.Err);
        Assert.DoesNotContain("end point:", again.Out);
        Assert.Equal(before, files.Select(File.ReadAllBytes));
        // One made with another K, or by `vae evaluate` without the training bound, is made again; so is one that a run
        // finished before the option was given lacks.
        File.WriteAllText(files[0], json);
        File.Delete(files[1]);
        var other = Vae.Tests.Cli.Vae.Run([.. Small, "--budget", "400", "--end-points", "all", "--end-point-k", "9", "--out", dir]);
        Assert.True(other.Code == VaeCommand.Ok, other.Err);
        Assert.Equal(2, other.Out.Split("end point:").Length - 1);
        var redone = ExperimentResults.FromJson(File.ReadAllText(Path.Combine(dir, "results.json")));
        Assert.All(redone.Runs, r => Assert.Equal((9, true), (r.EndPoint!["k"].GetInt32(), r.EndPoint.ContainsKey("train_elbo"))));
    }

    [Fact]
    public void ARunDirectoryHoldingOnlyAFinishedRecordIsFinishedAndAShortOneIsRefused()
    {
        string dir = TestEnvironment.NewTempDirectory();
        var (code, _, err) = Vae.Tests.Cli.Vae.Run([.. Small, "--budget", "2000", "--algorithms", "aevb", "--out", dir]);
        Assert.True(code == VaeCommand.Ok, err);
        var results = ExperimentResults.FromJson(File.ReadAllText(Path.Combine(dir, "results.json")));
        Assert.Equal("aevb", Assert.Single(results.Runs).Algorithm);
        // Committed results keep metrics.csv and options.txt, not checkpoints: such a run is finished, with its curve.
        string run = Path.Combine(dir, "j2-aevb");
        File.Delete(Path.Combine(run, "checkpoint.safetensors"));
        // The finished model's estimates, as `vae evaluate --json` prints them, travel with the record.
        File.WriteAllText(Path.Combine(run, ExperimentRuns.EndPointFileName), """{"k":5000,"test_iwae":-123.25}""");
        var again = Vae.Tests.Cli.Vae.Run([.. Small, "--budget", "2000", "--algorithms", "aevb", "--out", dir]);
        Assert.True(again.Code == VaeCommand.Ok, again.Err);
        Assert.Contains("skipped", again.Out);
        var same = ExperimentResults.FromJson(File.ReadAllText(Path.Combine(dir, "results.json")));
        Assert.Equal(results.Runs[0].Series, same.Runs[0].Series);
        Assert.Equal(0.02, same.Runs[0].StepSize);
        Assert.Equal(-123.25, same.Runs[0].EndPoint!["test_iwae"].GetDouble());
        // Another invocation with the other algorithm: results.json and the figure show both runs.
        var other = Vae.Tests.Cli.Vae.Run([.. Small, "--budget", "2000", "--algorithms", "wake-sleep", "--out", dir]);
        Assert.True(other.Code == VaeCommand.Ok, other.Err);
        var both = ExperimentResults.FromJson(File.ReadAllText(Path.Combine(dir, "results.json")));
        Assert.Equal(["aevb", "wake-sleep"], both.Runs.Select(r => r.Algorithm));
        Assert.Equal(results.Runs[0].Series, both.Runs[0].Series);
        // It cannot continue to a larger budget without its checkpoint: refused, naming the directory.
        var longer = Vae.Tests.Cli.Vae.Run([.. Small, "--budget", "4000", "--algorithms", "aevb", "--out", dir]);
        Assert.NotEqual(VaeCommand.Ok, longer.Code);
        Assert.Contains(run, longer.Err);
        Assert.Contains("no checkpoint", longer.Err);
    }

    [Fact]
    public void AFreyFaceRunOfAnExperimentCanBeEvaluated()
    {
        // Experiment runs record no command-line data fields: evaluate finds the data set from the run's description.
        string dir = TestEnvironment.NewTempDirectory();
        var (code, _, err) = Vae.Tests.Cli.Vae.Run("reproduce", "figure2", "--dataset", "frey-face", "--latent", "2", "--budget", "2000", "--algorithms", "aevb", "--threads", "1", "--out", dir);
        Assert.True(code == VaeCommand.Ok, err);
        var evaluated = Vae.Tests.Cli.Vae.Run("evaluate", "--checkpoint", Path.Combine(dir, "j2-aevb"), "--k", "5", "--json", "--threads", "1");
        Assert.True(evaluated.Code == VaeCommand.Ok, evaluated.Err);
        Assert.Contains("Frey Face", evaluated.Out);
    }

    [Theory]
    [InlineData("reproduce", "figure2", "--algorithms", "mcem")]
    [InlineData("reproduce", "figure2", "--step-size", "fast")]
    [InlineData("reproduce")]
    [InlineData("reproduce", "figure9")]
    [InlineData("reproduce", "figure2", "--latent", "0")]
    [InlineData("reproduce", "figure2", "--latent", "3,x")]
    [InlineData("reproduce", "figure2", "--budget", "0")]
    [InlineData("reproduce", "figure2", "--dataset", "cifar10")]
    [InlineData("reproduce", "figure2", "--train-eval", "-1")]
    [InlineData("reproduce", "figure2", "--executor", "pbs")]
    [InlineData("reproduce", "figure2", "--wait")]
    [InlineData("reproduce", "figure2", "--slurm-time", "1:00:00")]
    [InlineData("reproduce", "figure2", "--executor", "slurm", "--task", "0")]
    [InlineData("reproduce", "figure2", "--task", "-1")]
    [InlineData("reproduce", "figure2", "--latent", "2", "--task", "2")]
    public void BadReproduceOptionsAreOneLineAndExitCode2(params string[] args)
    {
        var (code, _, err) = Vae.Tests.Cli.Vae.Run(args);
        Assert.Equal(VaeCommand.BadUsage, code);
        Assert.StartsWith("vae: ", err);
        Assert.Single(err.TrimEnd().Split('\n'));
    }
}

public class ReproduceFigure3AndManifoldsTests
{
    /// <summary>--end-point-k means the same in both figures: the K of --end-points' importance-weighted estimate;
    /// alone it would do nothing, and is refused.</summary>
    [Theory]
    [InlineData("figure3", "--end-point-k", "30", "vae: reproduce figure3: --end-point-k: applies with --end-points N")]
    [InlineData("figure2", "--end-point-k", "30", "vae: reproduce figure2: --end-point-k: applies with --end-points N|all")]
    [InlineData("figure2", "--end-points", "some", "vae: reproduce figure2: --end-points: expected a number of images (1 or more) or all, got 'some'")]
    public void AnEndPointOptionWithoutItsPartnerOrWithABadValueIsRefused(string figure, string option, string value, string message)
    {
        var (code, _, err) = Vae.Tests.Cli.Vae.Run("reproduce", figure, option, value, "--out", TestEnvironment.NewTempDirectory());
        Assert.Equal(VaeCommand.BadUsage, code);
        Assert.Equal(message, err.Trim());
    }

    [Fact]
    public void Figure3ComparesTheThreeAlgorithmsByAppendixDAtEvenlySpacedPoints()
    {
        string dir = TestEnvironment.NewTempDirectory();
        string[] args = ["reproduce", "figure3", "--ntrain", "200", "--budget", "100000", "--evaluations", "2",
            "--points", "20", "--burn-in", "50", "--end-points", "15", "--end-point-k", "30", "--threads", "1", "--out", dir];
        var (code, output, err) = Vae.Tests.Cli.Vae.Run(args);
        Assert.True(code == VaeCommand.Ok, err);
        var results = ExperimentResults.FromJson(File.ReadAllText(Path.Combine(dir, "results.json")));
        Assert.Equal(["aevb", "wake-sleep", "mcem"], results.Runs.Select(r => r.Algorithm));
        Assert.Equal("200", results.Settings["train_images"]);
        Assert.Contains("Appendix D on the first 20", results.Settings["estimator"]);
        foreach (var run in results.Runs)
        {
            // Every algorithm is evaluated at the same training-sample counts (a Monte Carlo EM step is 5 x 200 samples).
            Assert.Equal([50_000L, 100_000], run.Series.Select(e => e.SamplesSeen));
            Assert.All(run.Series, e => Assert.True(e.TrainBound < 0 && e.TestBound < 0 && double.IsFinite(e.TrainBound), $"{run.Algorithm}: {e}"));
            // Training raises the estimated log p(x) of the training images.
            Assert.True(run.Series[1].TrainBound > run.Series[0].TrainBound, $"{run.Algorithm}: {run.Series[0].TrainBound} -> {run.Series[1].TrainBound}");
        }
        Assert.True(File.Exists(Path.Combine(dir, "figure3.png")));
        Assert.Contains("mcem", output);
        // results.json keeps Monte Carlo EM's iterations: 5 x 200 samples each, so its 100,000 samples are 100
        // iterations, drawn at 100 x 200 = 20,000 on anglepy's axis.
        Assert.Equal([null, null, 1000L], results.Runs.Select(r => r.SamplesPerIteration));
        var mcem = results.Runs[2];
        Assert.Equal(20_000.0, LearningCurvePlot.AxisSamples(mcem, mcem.Series[1], McemAxis.IterationsTimesN));
        Assert.Equal(100_000.0, LearningCurvePlot.AxisSamples(mcem, mcem.Series[1], McemAxis.IterationsTimesFiveN));
        Assert.Equal(100_000.0, LearningCurvePlot.AxisSamples(results.Runs[0], results.Runs[0].Series[1], McemAxis.IterationsTimesN));
        string png = Path.Combine(dir, "anglepy-axis.png");
        var plotted = Vae.Tests.Cli.Vae.Run("plot", Path.Combine(dir, "results.json"), "--mcem-axis", "n", "--out", png);
        Assert.True(plotted.Code == VaeCommand.Ok, plotted.Err);
        Assert.True(new FileInfo(png).Length > 0);
        // A Monte Carlo EM run recorded without its samples per iteration cannot be placed on that axis; the error names it.
        var old = mcem with { SamplesPerIteration = null };
        var e = Assert.Throws<InvalidDataException>(() => LearningCurvePlot.AxisSamples(old, old.Series[1], McemAxis.IterationsTimesN));
        Assert.Contains(old.Directory, e.Message);
        FinishedRunsKeepTheirEndPoints(dir, args, results);
    }

    /// <summary>Each finished run's end point: Appendix D's estimate on the first 15 training and test images, and for AEVB and
    /// wake-sleep (Monte Carlo EM trains no encoder) the importance-weighted estimate, the values <c>vae evaluate</c>
    /// gives for the run's checkpoint; made once, not again when the finished runs are skipped.</summary>
    static void FinishedRunsKeepTheirEndPoints(string dir, string[] args, ExperimentResults results)
    {
        foreach (var run in results.Runs)
        {
            var endPoint = run.EndPoint ?? throw new Xunit.Sdk.XunitException($"{run.Algorithm}: no end point in results.json");
            Assert.Equal(15, endPoint["train_points"].GetInt32());
            Assert.Equal(15, endPoint["test_points"].GetInt32());
            Assert.True(endPoint["test_hmc_marginal"].GetDouble() < 0, $"{run.Algorithm}: {endPoint["test_hmc_marginal"]}");
            Assert.Equal(run.Algorithm != "mcem", endPoint.ContainsKey("test_iwae"));
            var (code, json, err) = Vae.Tests.Cli.Vae.Run("evaluate", "--checkpoint", run.Directory, "--estimator", "hmc-marginal", "--points", "15", "--burn-in", "50", "--threads", "1", "--json");
            Assert.True(code == VaeCommand.Ok, err);
            using var evaluated = JsonDocument.Parse(json);
            Assert.Equal(evaluated.RootElement.GetProperty("train_hmc_marginal").GetDouble(), endPoint["train_hmc_marginal"].GetDouble());
            Assert.Equal(evaluated.RootElement.GetProperty("test_hmc_marginal").GetDouble(), endPoint["test_hmc_marginal"].GetDouble());
        }
        string[] files = [.. results.Runs.Select(r => Path.Combine(r.Directory, ExperimentRuns.EndPointFileName))];
        var written = files.Select(File.GetLastWriteTimeUtc).ToArray();
        var (again, output, errors) = Vae.Tests.Cli.Vae.Run(args);
        Assert.True(again == VaeCommand.Ok, errors);
        Assert.Contains("skipped", output);
        Assert.Equal(written, files.Select(File.GetLastWriteTimeUtc));
    }

    [Fact]
    public void ManifoldsTrainATwoDimensionalModelAndDrawItsGrid()
    {
        string dir = TestEnvironment.NewTempDirectory();
        var (code, output, err) = Vae.Tests.Cli.Vae.Run("reproduce", "manifolds", "--dataset", "mnist", "--budget", "2000", "--threads", "1", "--out", dir);
        Assert.True(code == VaeCommand.Ok, err);
        byte[] png = File.ReadAllBytes(Path.Combine(dir, "mnist-manifold.png"));
        // A 20 x 20 grid of 28 x 28 images with one-pixel borders.
        Assert.Equal(20 * 29 + 1, BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(16)));
        var results = ExperimentResults.FromJson(File.ReadAllText(Path.Combine(dir, "results.json")));
        Assert.Equal(2, Assert.Single(results.Runs).LatentDimensions);
        // Again: the model is finished, so it is not retrained.
        Assert.Contains("skipped", Vae.Tests.Cli.Vae.Run("reproduce", "manifolds", "--dataset", "mnist", "--budget", "2000", "--threads", "1", "--out", dir).Out);
    }

    [Fact]
    public async Task ManifoldsAsLocalJobsDrawTheGridsOfOneProcess()
    {
        string here = TestEnvironment.NewTempDirectory(), jobs = TestEnvironment.NewTempDirectory();
        string[] both = ["reproduce", "manifolds", "--budget", "2000"];
        Assert.Equal(VaeCommand.Ok, Vae.Tests.Cli.Vae.Run([.. both, "--threads", "1", "--out", here]).Code);
        string cli = TestEnvironment.CliDll;
        var (code, output, errors) = await TestEnvironment.RunProcessAsync("dotnet", [cli, .. both, "--out", jobs, "--jobs", "2"], TestEnvironment.RepositoryRoot,
            new Dictionary<string, string> { ["VAE_FREY_FACE"] = Environment.GetEnvironmentVariable("VAE_FREY_FACE") ?? "" });
        Assert.True(code == VaeCommand.Ok, output + errors);
        foreach (var name in new[] { "mnist", "frey-face" })
            Assert.Equal(File.ReadAllBytes(Path.Combine(here, $"{name}-manifold.png")), File.ReadAllBytes(Path.Combine(jobs, $"{name}-manifold.png")));
        var runs = ExperimentResults.FromJson(File.ReadAllText(Path.Combine(jobs, "results.json"))).Runs;
        Assert.Equal(2, runs.Count);
        Assert.DoesNotContain("unfinished", output);
    }
}

public class ExperimentRunsTests
{
    [Fact]
    public void LogSpacedPointsHaveFourPerDecadeAndEndAtTheLast()
    {
        Assert.Equal([100_000L, 177_828, 316_228, 562_341, 1_000_000], ExperimentRuns.LogSpaced(100_000, 1_000_000));
        Assert.Equal([5L], ExperimentRuns.LogSpaced(10, 5));
        Assert.Throws<ArgumentOutOfRangeException>(() => ExperimentRuns.LogSpaced(0, 10));
    }

    [Fact]
    public void MetricsKeepOneRowPerSampleCountAndNameABadField()
    {
        string path = Path.Combine(TestEnvironment.NewTempDirectory(), "metrics.csv");
        // An evaluation repeated after a crash between it and its checkpoint: the last row wins.
        File.WriteAllLines(path, ["samples,seconds,train_bound,test_bound", "100,1.0,-200,-201", "200,2.0,-150,", "100,1.5,-199,-200"]);
        var rows = RunRecord.ReadEvaluations(path);
        Assert.Equal([100L, 200], rows.Select(r => r.SamplesSeen));
        Assert.Equal(-199, rows[0].TrainBound);
        Assert.True(double.IsNaN(rows[1].TestBound));
        File.AppendAllLines(path, ["300,3.0,abc,-1"]);
        var e = Assert.Throws<InvalidDataException>(() => RunRecord.ReadEvaluations(path));
        Assert.Contains("line 5", e.Message);
        Assert.Contains("train_bound", e.Message);
    }
}

public class LearningCurvePlotTests
{
    [Fact]
    public void PlotDrawsTheCommittedFigure2ResultsAsTheRowsOfThePapersFigure()
    {
        // The paper's Figure 2: MNIST's five panels above Frey Face's four, from the records committed in docs/results.
        string mnist = Path.Combine(TestEnvironment.RepositoryRoot, "docs", "results", "figure2-mnist", "results.json");
        string frey = Path.Combine(TestEnvironment.RepositoryRoot, "docs", "results", "figure2-frey-face", "results.json");
        string png = Path.Combine(TestEnvironment.NewTempDirectory(), "figure2.png");
        var (code, output, err) = Vae.Tests.Cli.Vae.Run("plot", mnist, frey, "--out", png);
        Assert.True(code == VaeCommand.Ok, err);
        Assert.Contains("figure2 on MNIST, 5 panels; figure2 on Frey Face, 4 panels", output);
        using var image = SkiaSharp.SKBitmap.Decode(png);
        Assert.Equal((5 * 420, 2 * 420), (image.Width, image.Height));
        // Every panel of each row has curves: coloured pixels in its plot area (above the legend, whose swatches are
        // coloured too); the place of Frey Face's missing fifth panel is blank.
        bool Drawn(int column, int row)
        {
            for (int y = row * 420; y < row * 420 + 250; y++)
                for (int x = column * 420; x < (column + 1) * 420; x++)
                    if (image.GetPixel(x, y) is var c && Math.Max(c.Red, Math.Max(c.Green, c.Blue)) - Math.Min(c.Red, Math.Min(c.Green, c.Blue)) > 100) return true;
            return false;
        }
        Assert.All(Enumerable.Range(0, 5), i => Assert.True(Drawn(i, 0), $"MNIST panel {i}"));
        Assert.All(Enumerable.Range(0, 4), i => Assert.True(Drawn(i, 1), $"Frey Face panel {i}"));
        Assert.False(Drawn(4, 1));
    }

    [Fact]
    public void PanelTitlesNameTheDataSetTheLatentSizeAndFigure3sTrainingImages()
    {
        string results = Path.Combine(TestEnvironment.RepositoryRoot, "docs", "results");
        // Records written before results.json kept the label take the name from the data set's description.
        Assert.Equal("Frey Face, J = 20", LearningCurvePlot.PanelTitle(ExperimentResults.Load(Path.Combine(results, "figure2-frey-face", "results.json")), 20));
        Assert.Equal("MNIST, N_train = 1000, J = 3", LearningCurvePlot.PanelTitle(ExperimentResults.Load(Path.Combine(results, "figure3-ntrain1000.json")), 3));
        var labelled = ExperimentResults.Load(Path.Combine(results, "figure2-mnist.json")) is var r
            ? r with { Settings = new Dictionary<string, string>(r.Settings) { ["label"] = "Binarised MNIST" } } : null!;
        Assert.Equal("Binarised MNIST, J = 5", LearningCurvePlot.PanelTitle(labelled, 5));
    }

    [Fact]
    public void EveryCommittedResultsFileLoads()
    {
        var files = Directory.GetFiles(Path.Combine(TestEnvironment.RepositoryRoot, "docs", "results"), "*.json", SearchOption.AllDirectories)
            .Where(f => Path.GetFileName(f) == "results.json" || Path.GetDirectoryName(f)!.EndsWith("results", StringComparison.Ordinal)).ToList();
        Assert.True(files.Count >= 7, string.Join(", ", files));
        Assert.All(files, f => Assert.NotEmpty(ExperimentResults.Load(f).Runs));
    }

    [Theory]
    [InlineData(null, "no such file")]
    [InlineData("", "not an experiment's results.json")]
    [InlineData("{\"name\": \"not results\"}", "not an experiment's results.json")]
    [InlineData("null", "not an experiment's results.json (expected a JSON object, found null)")]
    [InlineData("{\"experiment\": \"sweep\", \"settings\": \"seeds 0-7\"}", "not an experiment's results.json")]
    [InlineData(Figure2Json + "[{}]}", "not an experiment's results.json")]
    [InlineData(Figure2Json + "[null]}", "not an experiment's results.json (a run or an evaluation of 'runs' is null)")]
    [InlineData(Figure2Json + "[{\"algorithm\": \"aevb\", \"latent_dimensions\": 2, \"directory\": \"d\", \"skipped\": false, \"series\": [null]}]}", "not an experiment's results.json (a run or an evaluation of 'runs' is null)")]
    [InlineData(Figure2Json + "[]}", "holds no evaluated runs to draw")]
    public void PlotRefusesAFileThatIsNotFigureResultsNamingIt(string? content, string expected)
    {
        string dir = TestEnvironment.NewTempDirectory(), file = Path.Combine(dir, "results.json"), png = Path.Combine(dir, "f.png");
        if (content is not null) File.WriteAllText(file, content);
        var (code, _, err) = Vae.Tests.Cli.Vae.Run("plot", file, "--out", png);
        Assert.Equal(VaeCommand.BadUsage, code);
        Assert.Contains($"{file}: {expected}", err);
        Assert.Single(err.Trim().Split('\n'));
        Assert.False(File.Exists(png));
    }

    const string Figure2Json = "{\"experiment\": \"figure2\", \"dataset\": \"MNIST: x\", \"budget\": 1, \"seed\": 0, \"settings\": {}, \"measure\": \"m\", \"wall_seconds\": 1, "
        + "\"machine\": {\"processors\": 2, \"cpu\": \"c\", \"operating_system\": \"o\", \"framework\": \"f\", \"lib_torch\": \"l\", \"torch_threads\": 1}, \"runs\": ";

    [Fact]
    public void PlotRefusesOtherExperimentsADirectoryAndANameThatIsNotPng()
    {
        string results = Path.Combine(TestEnvironment.RepositoryRoot, "docs", "results");
        string dir = TestEnvironment.NewTempDirectory();
        string manifolds = Path.Combine(results, "manifolds.json"), figure = Path.Combine(results, "figure2-mnist.json");
        foreach (var (args, expected) in new[]
        {
            (new[] { "plot", manifolds, "--out", Path.Combine(dir, "f.png") }, $"{manifolds}: holds manifolds results; expected figure2's or figure3's learning curves"),
            (new[] { "plot", dir, "--out", Path.Combine(dir, "f.png") }, $"{dir}: is a directory"),
            (new[] { "plot", figure, "--out", Path.Combine(dir, "f.jpg") }, "--out: " + Path.Combine(dir, "f.jpg") + ": expected a name ending in .png"),
        })
        {
            var (code, _, err) = Vae.Tests.Cli.Vae.Run(args);
            Assert.Equal(VaeCommand.BadUsage, code);
            Assert.Contains(expected, err);
        }
        Assert.Empty(Directory.GetFiles(dir));
    }

    [Fact]
    public void AFirstEvaluationFarBelowTheRestLeavesTheAxis()
    {
        // Monte Carlo EM at N = 50,000: -543.5 after its Adagrad warm-up, then -201 to -159; the others -147 to -122.
        List<double>[] curves = [[-543.5, -201.2, -159.5], [-131.7, -127.3, -122.7], [-144.8, -141.9, -132.3]];
        var (bottom, top) = LearningCurvePlot.VerticalRange(curves) ?? throw new Xunit.Sdk.XunitException("no range");
        Assert.InRange(bottom, -201.2 - 0.05 * 78.5 - 1e-9, -201.2 - 0.05 * 78.5 + 1e-9);
        Assert.InRange(top, -122.7 + 0.05 * 78.5 - 1e-9, -122.7 + 0.05 * 78.5 + 1e-9);
    }

    [Fact]
    public void CurvesWhoseFirstEvaluationsLieWithinTheRestKeepThePlotsOwnRange()
    {
        // Figure 3 at N = 1000: every first point is within the spread of the others.
        List<double>[] curves = [[-144.7, -140.2, -138.5], [-147.0, -144.4, -141.1], [-115.1, -111.4, -107.3]];
        Assert.Null(LearningCurvePlot.VerticalRange(curves));
        // Figure 2's MNIST J = 3 preview (10^6 samples): wake-sleep's first point lies 20.6 below the rest's 20.5 spread.
        Assert.Null(LearningCurvePlot.VerticalRange([[-188.9, -174.1, -157.9], [-199.1, -178.4, -158.4]]));
        Assert.Null(LearningCurvePlot.VerticalRange([[-500.0, -100.0]]));
    }
}
