using System.Text.Json;

namespace Vae.Tests.Explorer;

/// <summary><c>vae explore</c>'s page in a real browser (Debian's Chromium, headless, over the DevTools protocol): it
/// loads from the file system with no console error, and what its script computes (decoder, manifold, encoder,
/// reconstruction of a drawing made with the mouse) equals the model's own libtorch results within 1e-4.</summary>
public class LatentSpacePageTests
{
    const double Tolerance = 1e-4;
    static string FreyFaceJ2 => Path.Combine(TestEnvironment.RepositoryRoot, "models", "figure2-frey-face", "j2-aevb-seed1.safetensors");

    static string Explore(params string[] args)
    {
        string html = Path.Combine(TestEnvironment.NewTempDirectory(), "explore.html");
        var (code, output, err) = Cli.Vae.Run(["explore", .. args, "--out", html]);
        Assert.True(code == 0, err);
        Assert.Contains("wrote " + html, output);
        return html;
    }

    static double[][] Rows(JsonElement e) => [.. e.EnumerateArray().Select(r => r.EnumerateArray().Select(v => v.GetDouble()).ToArray())];
    static double[] Row(JsonElement e) => [.. e.EnumerateArray().Select(v => v.GetDouble())];
    static float[,] Matrix(double[][] rows)
    {
        var m = new float[rows.Length, rows[0].Length];
        for (int i = 0; i < rows.Length; i++)
            for (int j = 0; j < rows[i].Length; j++) m[i, j] = (float)rows[i][j];
        return m;
    }

    /// <summary>The largest |page - model| over the rows, with the page's shape checked.</summary>
    static double LargestDifference(double[][] page, float[,] model)
    {
        Assert.Equal(model.GetLength(0), page.Length);
        double worst = 0;
        for (int i = 0; i < page.Length; i++)
        {
            Assert.Equal(model.GetLength(1), page[i].Length);
            for (int j = 0; j < page[i].Length; j++) worst = Math.Max(worst, Math.Abs(page[i][j] - model[i, j]));
        }
        return worst;
    }

    static async Task<(double X, double Y, double Width, double Height)> Box(HeadlessChromium browser, string id)
    {
        var r = await browser.EvaluateAsync($"(() => {{ const e = document.getElementById('{id}'); e.scrollIntoView({{ block: 'center' }}); const b = e.getBoundingClientRect(); return [b.x, b.y, b.width, b.height]; }})()");
        var v = Row(r);
        return (v[0], v[1], v[2], v[3]);
    }

    [Fact]
    public async Task AFreyFacePageDecodesEncodesAndDrawsItsManifoldAsTheModel()
    {
        string html = Explore("--checkpoint", FreyFaceJ2);
        using var model = VariationalAutoEncoder.Load(FreyFaceJ2);
        await using var browser = await HeadlessChromium.StartAsync();
        await browser.OpenAsync(html);
        Assert.Equal(2, (await browser.EvaluateAsync("vae.latent")).GetInt32());
        Assert.False((await browser.EvaluateAsync("document.getElementById('manifold-section').hidden")).GetBoolean());

        // The decoder at chosen points, and the encoder at the images it gives.
        double[][] zs = [[0, 0], [1.3, -0.7], [-2.5, 2.1], [0.1, 3.0]];
        var decoded = Rows(await browser.EvaluateAsync($"{JsonSerializer.Serialize(zs)}.map(vae.decode)"));
        var expected = model.Decode(Matrix(zs));
        Assert.True(LargestDifference(decoded, expected) < Tolerance, $"decode differs by {LargestDifference(decoded, expected)}");
        var codes = await browser.EvaluateAsync($"{JsonSerializer.Serialize(decoded)}.map(vae.encode)");
        var q = model.Encode(Matrix(decoded));
        Assert.True(LargestDifference([.. codes.EnumerateArray().Select(c => Row(c.GetProperty("mean")))], q.Mean) < Tolerance);
        Assert.True(LargestDifference([.. codes.EnumerateArray().Select(c => Row(c.GetProperty("logVar")))], q.LogVariance) < Tolerance);

        // Appendix A's manifold as the page draws it (its own inverse normal CDF) against Manifold(20).
        var manifold = Rows(await browser.EvaluateAsync("vae.manifoldPoints(20).map(vae.decode)"));
        Assert.True(LargestDifference(manifold, model.Manifold(20)) < Tolerance, $"manifold differs by {LargestDifference(manifold, model.Manifold(20))}");

        // A slider moved with the mouse moves z1, and the decoded image follows.
        var slider = await Box(browser, "z1");
        await browser.DragAsync((slider.X + 0.85 * slider.Width, slider.Y + slider.Height / 2));
        var z = Row(await browser.EvaluateAsync("vae.latentVector()"));
        Assert.True(z[0] > 1.0, $"z1 = {z[0]} after a click at 85 % of its slider");
        Assert.True(LargestDifference([Row(await browser.EvaluateAsync("vae.decoded()"))], model.Decode(Matrix([z]))) < Tolerance);

        // A click on a manifold image sets z to that image's point (row 4, column 15 of 20).
        var grid = await Box(browser, "manifold");
        await browser.DragAsync((grid.X + (15.5 / 20) * grid.Width, grid.Y + (4.5 / 20) * grid.Height));
        var points = Rows(await browser.EvaluateAsync("vae.manifoldPoints(20)"));
        Assert.Equal(points[4 * 20 + 15], Row(await browser.EvaluateAsync("vae.latentVector()")));

        // A stroke drawn with the mouse is encoded and reconstructed as Reconstruct does.
        var canvas = await Box(browser, "drawing");
        await browser.DragAsync([.. Enumerable.Range(0, 12).Select(k => (canvas.X + canvas.Width * (0.2 + 0.05 * k), canvas.Y + canvas.Height * (0.3 + 0.03 * k)))]);
        var drawing = Row(await browser.EvaluateAsync("vae.drawing()"));
        Assert.True(drawing.Count(v => v > 0.5) >= 10, $"the stroke left {drawing.Count(v => v > 0.5)} bright pixels");
        var reconstruction = Row(await browser.EvaluateAsync("vae.reconstruction()"));
        Assert.True(LargestDifference([reconstruction], model.Reconstruct(Matrix([drawing]))) < Tolerance);

        Assert.True(browser.Problems.Count == 0, string.Join("\n", browser.Problems));
    }

    [Fact]
    public async Task ARunDirectorysPageShowsItsLearningCurvesAndNoManifoldBeyondTwoDimensions()
    {
        string run = TestEnvironment.NewTempDirectory();
        var (code, _, err) = Cli.Vae.Run("train", "--latent", "3", "--hidden", "20", "--samples", "3000", "--eval-every", "1000", "--threads", "1", "--out", run);
        Assert.True(code == 0, err);
        string html = Explore("--checkpoint", run, "--sliders", "2");
        using var model = VariationalAutoEncoder.Load(Trainer.CheckpointPath(run));
        await using var browser = await HeadlessChromium.StartAsync();
        await browser.OpenAsync(html);

        Assert.True((await browser.EvaluateAsync("document.getElementById('manifold-section').hidden")).GetBoolean());
        Assert.Equal(2, (await browser.EvaluateAsync("document.querySelectorAll('#sliders input').length")).GetInt32());
        double[][] zs = [[0, 0, 0], [0.5, -1.5, 2]];
        var decoded = Rows(await browser.EvaluateAsync($"{JsonSerializer.Serialize(zs)}.map(vae.decode)"));
        Assert.True(LargestDifference(decoded, model.Decode(Matrix(zs))) < Tolerance);

        // One point per evaluation in metrics.csv (a header and 3 rows), for each of the two bounds.
        int rows = File.ReadAllLines(Path.Combine(run, "metrics.csv")).Length - 1;
        Assert.Equal(3, rows);
        foreach (string curve in new[] { "curve-train", "curve-test" })
            Assert.Equal(rows, (await browser.EvaluateAsync($"document.getElementById('{curve}').getAttribute('points').trim().split(' ').length")).GetInt32());
        Assert.True(browser.Problems.Count == 0, string.Join("\n", browser.Problems));
    }

    [Fact]
    public async Task AStandardisedGaussianModelsPageWorksInTheDatasUnitsAndOffersNoDrawing()
    {
        // Six real-valued features of very different scales (StandardizationTests' rows), standardised for training.
        using var trainer = new AevbTrainer(new VaeModelOptions { InputDimension = 6, HiddenUnits = 10, LatentDimensions = 2, Likelihood = DecoderLikelihood.Gaussian },
                                            new AevbOptions { StepSize = 0.05, BatchSize = 50, Seed = 3 });
        var rows = Training.StandardizationTests.Rows(500, 1);
        trainer.Fit(rows, new TrainingOptions { TotalSamples = 20_000, EvaluateEvery = 0, StandardizeInputs = true, TensorBoard = false });
        var model = trainer.Model;
        Assert.NotNull(model.Standardization);
        string html = Path.Combine(TestEnvironment.NewTempDirectory(), "wine-like.html");
        model.ExportLatentSpacePage(html, new LatentSpacePageOptions { Title = "six features", ImageHeight = 1, ImageWidth = 6 });
        await using var browser = await HeadlessChromium.StartAsync();
        await browser.OpenAsync(html);
        Assert.True((await browser.EvaluateAsync("document.getElementById('draw-section').hidden")).GetBoolean());
        double[][] zs = [[0, 0], [1.5, -2]];
        var decoded = Rows(await browser.EvaluateAsync($"{JsonSerializer.Serialize(zs)}.map(vae.decode)"));
        var expected = model.Decode(Matrix(zs));
        // Values in the data's units (up to about 2000): within 1e-4 of each value's magnitude.
        for (int i = 0; i < zs.Length; i++)
            for (int d = 0; d < 6; d++)
                Assert.True(Math.Abs(decoded[i][d] - expected[i, d]) <= Tolerance * Math.Max(1, Math.Abs(expected[i, d])), $"decode[{i}, {d}]: {decoded[i][d]} against {expected[i, d]}");
        var x = rows.First(3).ToArray2D();
        var codes = await browser.EvaluateAsync($"{JsonSerializer.Serialize(Enumerable.Range(0, 3).Select(i => Enumerable.Range(0, 6).Select(d => x[i, d]).ToArray()))}.map(vae.encode)");
        Assert.True(LargestDifference([.. codes.EnumerateArray().Select(c => Row(c.GetProperty("mean")))], model.Encode(x).Mean) < Tolerance);
        Assert.True(browser.Problems.Count == 0, string.Join("\n", browser.Problems));
    }

    [Theory]
    [InlineData("--height", "27", "--height/--width")]
    [InlineData("--out", "page.txt", "expected a name ending in .html")]
    public void BadOptionsAreNamed(string option, string value, string message)
    {
        var (code, _, err) = Cli.Vae.Run("explore", "--checkpoint", FreyFaceJ2, option, value);
        Assert.Equal(global::Vae.Cli.VaeCommand.BadUsage, code);
        Assert.Contains(message, err);
    }
}
