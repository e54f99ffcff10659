using System.Buffers.Binary;

namespace Vae.Tests;

/// <summary>Readers of what runs, models and pictures leave on disk, shared by the tests that compare them.</summary>
static class TestRecords
{
    /// <summary>A run directory's evaluations as (samples, training bound, test bound): the seconds are the machine's.</summary>
    public static (long Samples, double Train, double Test)[] Curve(string runDirectory) =>
        [.. RunRecord.ReadEvaluations(Path.Combine(runDirectory, "metrics.csv")).Select(e => (e.SamplesSeen, e.TrainBound, e.TestBound))];

    /// <summary>The model of a run directory's checkpoint as the bytes of its model file (parameters and settings, no
    /// optimiser state or progress): equal for runs that end at the same parameters.</summary>
    public static byte[] ModelBytes(string runDirectory)
    {
        string file = Path.Combine(TestEnvironment.NewTempDirectory(), "model.vae");
        using (var model = VariationalAutoEncoder.Load(Path.Combine(runDirectory, Trainer.CheckpointFileName))) model.Save(file);
        return File.ReadAllBytes(file);
    }

    static readonly byte[] PngSignature = [0x89, (byte)'P', (byte)'N', (byte)'G', 13, 10, 26, 10];

    /// <summary>A PNG file's width and height from its IHDR chunk, after checking the signature.</summary>
    public static (int Width, int Height) PngSize(string path)
    {
        byte[] b = File.ReadAllBytes(path);
        Assert.Equal(PngSignature, b[..8]);
        Assert.Equal("IHDR", System.Text.Encoding.ASCII.GetString(b, 12, 4));
        return (BinaryPrimitives.ReadInt32BigEndian(b.AsSpan(16)), BinaryPrimitives.ReadInt32BigEndian(b.AsSpan(20)));
    }

    /// <summary>An 8-bit greyscale PNG's size and pixels (row by row), after checking its header says so.</summary>
    public static (int Width, int Height, byte[] Pixels) ReadGreyPng(string path)
    {
        var (width, height) = PngSize(path);
        byte[] b = File.ReadAllBytes(path);
        Assert.Equal(8, b[24]); // bit depth
        Assert.Equal(0, b[25]); // colour type: grey
        using var bitmap = SkiaSharp.SKBitmap.Decode(b);
        Assert.Equal((width, height), (bitmap.Width, bitmap.Height));
        var pixels = new byte[width * height];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                pixels[y * width + x] = bitmap.GetPixel(x, y).Red;
        return (width, height, pixels);
    }
}
