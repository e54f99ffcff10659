using Vae.Cli;

namespace Vae.Tests.Training;

public class PictureTests
{
    /// <summary>Decodes a PNG written by ImageMosaic with SkiaSharp's decoder; checks that it is 8-bit grey.</summary>
    [Fact]
    public void MosaicPngHoldsTheImagesInAGridWithBorders()
    {
        var images = new float[3, 6]; // three 2 x 3 images
        for (int i = 0; i < 3; i++) for (int k = 0; k < 6; k++) images[i, k] = (i * 6 + k) / 17f;
        string path = Path.Combine(TestEnvironment.NewTempDirectory(), "m.png");
        ImageMosaic.SavePng(path, images, height: 2, width: 3, columns: 2);
        var (w, h, px) = TestRecords.ReadGreyPng(path);
        Assert.Equal((2 * 4 + 1, 2 * 3 + 1), (w, h));
        Assert.Equal(0, px[1 * w + 1]);                 // image 0, pixel (0, 0)
        Assert.Equal(Math.Round(5 / 17.0 * 255), px[2 * w + 3]);  // image 0, pixel (1, 2)
        Assert.Equal(Math.Round(6 / 17.0 * 255), px[1 * w + 5]);  // image 1, pixel (0, 0)
        Assert.Equal(Math.Round(12 / 17.0 * 255), px[4 * w + 1]); // image 2, pixel (0, 0)
        Assert.Equal(255, px[0]);                       // border
    }

    [Fact]
    public void ManifoldGridIsTheInverseGaussianCdfOfAnEvenGrid()
    {
        using var grid = Vae.Core.Plots.Mosaic.manifoldGrid(4, TorchSharp.torch.float64);
        var z = grid.data<double>().ToArray();
        Assert.Equal(32, z.Length);
        // u = 1/8, 3/8, 5/8, 7/8; Φ⁻¹(1/8) = -1.15034938, Φ⁻¹(3/8) = -0.31863936.
        Assert.Equal(-1.15034938, z[0], 6);   // first row, first column: x smallest
        Assert.Equal(1.15034938, z[1], 6);    // y largest on the top row
        Assert.Equal(-0.31863936, z[2], 6);
        Assert.Equal(-1.15034938, z[31], 6);  // bottom row: y smallest
    }

    [Fact]
    public void SampleAndManifoldCommandsWritePngFiles()
    {
        string dir = TestEnvironment.NewTempDirectory();
        string model = Path.Combine(dir, "j2.vae");
        VariationalAutoEncoder.Create(new VaeModelOptions { HiddenUnits = 10, LatentDimensions = 2 }, seed: 3).Save(model);
        var (code, _, err) = Cli.Vae.Run("manifold", "--checkpoint", model, "--grid", "5", "--out", Path.Combine(dir, "m.png"));
        Assert.True(code == VaeCommand.Ok, err);
        var m = TestRecords.ReadGreyPng(Path.Combine(dir, "m.png"));
        Assert.Equal((5 * 29 + 1, 5 * 29 + 1), (m.Width, m.Height));
        Assert.Equal(VaeCommand.Ok, Cli.Vae.Run("sample", "--checkpoint", model, "--count", "6", "--columns", "3", "--out", Path.Combine(dir, "s.png")).Code);
        var s = TestRecords.ReadGreyPng(Path.Combine(dir, "s.png"));
        Assert.Equal((3 * 29 + 1, 2 * 29 + 1), (s.Width, s.Height));
        string j3 = Path.Combine(dir, "j3.vae");
        VariationalAutoEncoder.Create(new VaeModelOptions { HiddenUnits = 10, LatentDimensions = 3 }).Save(j3);
        Assert.Equal(VaeCommand.BadUsage, Cli.Vae.Run("manifold", "--checkpoint", j3).Code);
        Assert.Equal(VaeCommand.BadUsage, Cli.Vae.Run("sample", "--checkpoint", model, "--count", "0").Code);
    }
}
