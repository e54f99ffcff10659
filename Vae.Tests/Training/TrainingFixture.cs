using Vae.Data;

namespace Vae.Tests.Training;

/// <summary>Small real data for fast training tests: the first 1000 MNIST training images and 500 test images.</summary>
public static class SmallMnist
{
    static readonly Lazy<(ImageData Train, ImageData Test)> Data = new(() =>
    {
        var mnist = DataSets.Mnist(TestEnvironment.CachedData);
        return (Slice(mnist.Train, 1000), Slice(mnist.Test, 500));
    });

    public static ImageData Train => Data.Value.Train;
    public static ImageData Test => Data.Value.Test;

    static ImageData Slice(ImageData x, int n) => new(n, x.Height, x.Width, x.Pixels[..(n * x.Dimension)]);

    /// <summary>A small model (J = 3, 40 hidden units) so that hundreds of steps take a second or two.</summary>
    public static VaeModelOptions Model { get; } = new() { HiddenUnits = 40, LatentDimensions = 3 };

    public static AevbOptions Aevb(long seed = 7) => new() { Seed = seed, StepSize = 0.05 };
}
